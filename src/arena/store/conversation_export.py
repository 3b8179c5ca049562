"""Voted battles as the release export reads them: whole conversations, vote, tags, and why
a battle stays out.

One record per battle vote (modes ``battle`` and ``side_by_side``), in vote order, read in
batches so memory stays flat: a first light query per batch decides who stays out, and only
the battles that stay in have their messages and tags read. Left out, and counted by reason:

- ``opted_out``: the battle is ``release_excluded``, or its session (or the voting session)
  is in ``release_opt_outs``;
- ``flagged_voter``: the anomalous-voter screen flagged the vote's session, or its IP and
  did not clear its session: ``arena.store.voter_flags.FlaggedIdentities``, the same rule
  as the leaderboard (on the session hash stored with the vote, so it holds after expired
  sessions are purged);
- ``failed_answer``: a shown answer failed or never came (no clean battle, as in
  ``arena.store.export``).

Texts come out as stored; scrubbing them is the release pipeline's job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, select

from arena.store.db import Database
from arena.store.pipeline_tables import BattleTag, ReleaseOptOut
from arena.store.records import BATTLES, CONVERSATIONS, MESSAGES, VOTES
from arena.store.voter_flags import load_flagged_identities

EXCLUSION_REASONS = ("opted_out", "flagged_voter", "failed_answer")
RELEASE_MODES = ("battle", "side_by_side")
BATCH_SIZE = 500

_TAGS = BattleTag.__table__
_OPT_OUTS = ReleaseOptOut.__table__


@dataclass(frozen=True)
class StoredTag:
    value: Any
    tagger: str
    version: str


@dataclass(frozen=True)
class ReleaseBattle:
    """A voted battle that may be released; ``judge`` is the store's voter id (the clean
    battle export's, hashed again before release)."""

    battle_id: str
    mode: str
    model_a: str
    model_b: str
    vote: str
    voted_at: datetime
    judge: str
    moderation_flagged: bool
    conversation_a: tuple[tuple[str, str], ...]
    conversation_b: tuple[tuple[str, str], ...]
    turns: int
    tags: dict[str, StoredTag] = field(default_factory=dict)


def _conversation(messages: list[tuple[str, str, str | None]]) -> tuple[list, int, bool]:
    """(role, content) pairs with the newest answer of each turn (older ones were
    regenerated), the number of turns, and whether a shown answer failed or is missing."""
    turns: list[tuple[list[tuple[str, str]], tuple[str, str | None] | None]] = []
    pending: list[tuple[str, str]] = []
    for role, content, error in messages:
        if role == "system":
            pending.append((role, content))
        elif role == "user":
            turns.append(([*pending, (role, content)], None))
            pending = []
        elif turns:
            turns[-1] = (turns[-1][0], (content, error))
    out: list[tuple[str, str]] = []
    failed = False
    for asked, answer in turns:
        out.extend(asked)
        if answer is None or answer[1] is not None:
            failed = True
        else:
            out.append(("assistant", answer[0]))
    return out, len(turns), failed


def _opted_out_clause() -> Any:
    return exists().where(
        or_(
            _OPT_OUTS.c.session_id == BATTLES.c.session_id,
            _OPT_OUTS.c.session_id == VOTES.c.session_id,
        )
    )


def _votes_query(after: int, limit: int) -> Any:
    return (
        select(
            VOTES.c.id.label("vote_id"),
            VOTES.c.type,
            VOTES.c.created_at,
            VOTES.c.session_hash,
            VOTES.c.ip_hash,
            BATTLES.c.id.label("battle_id"),
            BATTLES.c.mode,
            BATTLES.c.model_a,
            BATTLES.c.model_b,
            BATTLES.c.release_excluded,
            BATTLES.c.moderation_flagged,
            _opted_out_clause().label("opted_out"),
        )
        .select_from(VOTES.join(BATTLES, BATTLES.c.id == VOTES.c.battle_id))
        .where(
            VOTES.c.message_id.is_(None),
            VOTES.c.id > after,
            BATTLES.c.mode.in_(RELEASE_MODES),
        )
        .order_by(VOTES.c.id)
        .limit(limit)
    )


def _messages(conn: Any, ids: list[str]) -> dict[tuple[str, str], list]:
    query = (
        select(
            CONVERSATIONS.c.battle_id,
            CONVERSATIONS.c.side,
            MESSAGES.c.role,
            MESSAGES.c.content,
            MESSAGES.c.error,
        )
        .select_from(CONVERSATIONS.join(MESSAGES, MESSAGES.c.conversation_id == CONVERSATIONS.c.id))
        .where(CONVERSATIONS.c.battle_id.in_(ids))
        .order_by(CONVERSATIONS.c.battle_id, CONVERSATIONS.c.side, MESSAGES.c.position)
    )
    out: dict[tuple[str, str], list] = {}
    for battle_id, side, role, content, error in conn.execute(query):
        out.setdefault((battle_id, side), []).append((role, content or "", error))
    return out


def _tags(conn: Any, ids: list[str]) -> dict[str, dict[str, StoredTag]]:
    query = select(
        _TAGS.c.battle_id, _TAGS.c.name, _TAGS.c.value, _TAGS.c.tagger, _TAGS.c.version
    ).where(_TAGS.c.battle_id.in_(ids), _TAGS.c.status == "ok")
    out: dict[str, dict[str, StoredTag]] = {}
    for battle_id, name, value, tagger, version in conn.execute(query):
        out.setdefault(battle_id, {})[name] = StoredTag(value, tagger, version)
    return out


def iter_release_battles(
    db: Database, excluded: Counter[str], *, batch_size: int = BATCH_SIZE
) -> Iterator[ReleaseBattle]:
    """Voted battles that may be released, in vote order; adds what it leaves out to
    ``excluded`` (keys from ``EXCLUSION_REASONS``)."""
    flagged = load_flagged_identities(db)
    after = 0
    while True:
        with db.session(read_only=True) as session:
            conn = session.connection()
            votes = conn.execute(_votes_query(after, batch_size)).mappings().all()
            kept = []
            for vote in votes:
                voter = vote["ip_hash"] or vote["session_hash"]
                if vote["release_excluded"] or vote["opted_out"]:
                    excluded["opted_out"] += 1
                elif flagged.excludes_vote(vote["ip_hash"], vote["session_hash"]):
                    excluded["flagged_voter"] += 1
                else:
                    kept.append((vote, voter))
            ids = [vote["battle_id"] for vote, _ in kept]
            messages = _messages(conn, ids) if ids else {}
            tags = _tags(conn, ids) if ids else {}
        for vote, voter in kept:
            battle_id = vote["battle_id"]
            a, turns_a, failed_a = _conversation(messages.get((battle_id, "a"), []))
            b, turns_b, failed_b = _conversation(messages.get((battle_id, "b"), []))
            if failed_a or failed_b or not turns_a or not turns_b:
                excluded["failed_answer"] += 1
                continue
            yield ReleaseBattle(
                battle_id=battle_id,
                mode=vote["mode"],
                model_a=vote["model_a"],
                model_b=vote["model_b"],
                vote=vote["type"],
                voted_at=vote["created_at"],
                judge=f"arena_user_{voter or 'anonymous'}",
                moderation_flagged=bool(vote["moderation_flagged"]),
                conversation_a=tuple(a),
                conversation_b=tuple(b),
                turns=min(turns_a, turns_b),
                tags=tags.get(battle_id, {}),
            )
        if len(votes) < batch_size:
            return
        after = votes[-1]["vote_id"]
