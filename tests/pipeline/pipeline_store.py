"""Pipeline test helpers: battles written through the store API, as the arena writes them."""

from __future__ import annotations

from collections.abc import Sequence

from arena.store.battles import create_battle
from arena.store.conversations import add_message
from arena.store.db import Database
from arena.store.votes import record_vote


def add_battle(
    db: Database,
    prompts: Sequence[str],
    *,
    model_a: str = "alpha",
    model_b: str = "beta",
    vote: str | None = "a",
    ip_hash: str | None = "voter-1",
    mode: str = "battle",
) -> str:
    """A battle whose both sides got ``prompts`` (one answer each), voted ``vote``."""
    battle = create_battle(db, mode=mode, model_a=model_a, model_b=model_b)
    for turn, prompt in enumerate(prompts):
        for side, conv in (("a", battle.conversation_a_id), ("b", battle.conversation_b_id)):
            add_message(db, conv, role="user", content=prompt)
            add_message(db, conv, role="assistant", content=f"answer {side}{turn}")
    if vote is not None:
        record_vote(db, battle.id, vote, ip_hash=ip_hash)
    return battle.id
