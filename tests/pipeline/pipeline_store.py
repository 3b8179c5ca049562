"""Helpers of the pipeline tests: an emptied, migrated store and battles written through the
store API (as the web arena writes them)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from sqlalchemy import text

from arena.store.battles import create_battle
from arena.store.conversations import add_message
from arena.store.db import Database
from arena.store.migrate import upgrade
from arena.store.models import Base
from arena.store.votes import record_vote


@contextlib.contextmanager
def empty_store(url: str) -> Iterator[Database]:
    """The database at ``url`` migrated, with every table empty (PostgreSQL is shared by the
    test session, so it is truncated before and after)."""
    upgrade(url)
    db = Database(url)
    _empty(db)
    try:
        yield db
    finally:
        _empty(db)  # tests elsewhere share the PostgreSQL database and expect it empty
        db.dispose()


def _empty(db: Database) -> None:
    if db.engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


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
