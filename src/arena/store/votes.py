"""Votes and feedback on battles: one battle vote per two-model battle (the database's
unique index decides races), repeatable feedback on messages, and reading them back. Every
write commits before the function returns, so a returned vote is durable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Integer, bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from arena.errors import BadRequest, Conflict, NotFound
from arena.store.db import Database
from arena.store.models import (
    BATTLE_VOTE_TYPES,
    FEEDBACK_VOTE_TYPES,
    Vote,
    check_fits,
    utcnow,
)
from arena.store.records import (
    BATTLES,
    CONVERSATIONS,
    MESSAGES,
    SESSIONS,
    TWO_MODEL_MODES,
    VOTES,
)
from arena.store.voter_flags import session_judge


@dataclass(frozen=True, slots=True)
class VoteInfo:
    id: int
    battle_id: str
    message_id: int | None
    type: str
    created_at: datetime
    session_id: str | None
    ip_hash: str | None


def _vote_info(row: Vote) -> VoteInfo:
    return VoteInfo(
        row.id, row.battle_id, row.message_id, row.type, row.created_at, row.session_id, row.ip_hash
    )


def read_battle_vote(conn: Connection, battle_id: str) -> VoteInfo | None:
    row = (
        conn.execute(
            select(VOTES)
            .where(VOTES.c.battle_id == battle_id, VOTES.c.message_id.is_(None))
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return VoteInfo(
        row["id"],
        row["battle_id"],
        row["message_id"],
        row["type"],
        row["created_at"],
        row["session_id"],
        row["ip_hash"],
    )


# What a vote must find, in one round trip: the battle's mode, whether the voter's session
# exists, and which battle the rated message (feedback) belongs to.
_VOTE_CHECKS = select(
    BATTLES.c.mode,
    exists().where(SESSIONS.c.id == bindparam("session_id")),
    select(CONVERSATIONS.c.battle_id)
    .join(MESSAGES, MESSAGES.c.conversation_id == CONVERSATIONS.c.id)
    .where(MESSAGES.c.id == bindparam("message_id", type_=Integer))
    .scalar_subquery(),
).where(BATTLES.c.id == bindparam("battle_id"))


def record_vote(
    db: Database,
    battle_id: str,
    vote: str,
    *,
    session_id: str | None = None,
    ip_hash: str | None = None,
    message_id: int | None = None,
    status: str | None = None,
    now: datetime | None = None,
) -> VoteInfo:
    """Store a vote and commit before returning.

    Battle votes (``a``, ``b``, ``tie``, ``bothbad``) are allowed once per battle in the
    ``battle`` and ``side_by_side`` modes; the database's unique index decides races, and the
    loser gets ``Conflict``. Feedback (``upvote``, ``downvote``, ``flag``) names one message
    of the battle and may repeat. ``status``, when given, is set on the battle in the same
    transaction. Unknown battle/message/session: ``NotFound``; other bad input: ``BadRequest``.
    """
    is_battle_vote = vote in BATTLE_VOTE_TYPES
    if not is_battle_vote and vote not in FEEDBACK_VOTE_TYPES:
        raise BadRequest(
            f"vote must be one of {BATTLE_VOTE_TYPES + FEEDBACK_VOTE_TYPES}, got {vote!r}",
            param="vote",
        )
    if is_battle_vote and message_id is not None:
        raise BadRequest("a battle vote names no message", param="message_id")
    if not is_battle_vote and message_id is None:
        raise BadRequest(f"{vote!r} feedback needs a message_id", param="message_id")
    check_fits(ip_hash, Vote.ip_hash, param="ip_hash")
    now = now or utcnow()
    try:
        with db.session() as session:
            conn = session.connection()
            found = conn.execute(
                _VOTE_CHECKS,
                {"battle_id": battle_id, "session_id": session_id, "message_id": message_id},
            ).first()
            if found is None:
                raise NotFound(f"battle {battle_id!r} not found", param="battle_id")
            mode, session_known, message_battle = found
            if is_battle_vote and mode not in TWO_MODEL_MODES:
                raise BadRequest(f"a {mode!r} chat takes feedback, not battle votes")
            if message_id is not None and message_battle != battle_id:
                raise NotFound(f"message {message_id!r} not found in battle {battle_id!r}")
            if session_id is not None and not session_known:
                raise NotFound(f"session {session_id!r} not found", param="session_id")
            result = conn.execute(
                insert(VOTES),
                {
                    "battle_id": battle_id,
                    "message_id": message_id,
                    "type": vote,
                    "created_at": now,
                    "session_id": session_id,
                    "session_hash": session_judge(session_id),
                    "ip_hash": ip_hash,
                },
            )
            vote_id = result.inserted_primary_key[0]
            if status is not None:
                conn.execute(
                    update(BATTLES)
                    .where(BATTLES.c.id == battle_id)
                    .values(status=status, updated_at=now)
                )
        return VoteInfo(vote_id, battle_id, message_id, vote, now, session_id, ip_hash)
    except IntegrityError as e:
        if is_battle_vote:
            raise Conflict(f"battle {battle_id!r} already has a vote", param="battle_id") from e
        raise BadRequest("the vote was rejected by the database") from e


def get_battle_vote(db: Database, battle_id: str) -> VoteInfo | None:
    """The battle vote (not feedback) of a battle, if any."""
    with db.session(read_only=True) as session:
        return read_battle_vote(session.connection(), battle_id)


def list_votes(db: Database, battle_id: str) -> list[VoteInfo]:
    """All votes and feedback of a battle, oldest first."""
    with db.session(read_only=True) as session:
        rows = session.scalars(
            select(Vote).where(Vote.battle_id == battle_id).order_by(Vote.created_at, Vote.id)
        )
        return [_vote_info(row) for row in rows]


def count_votes(db: Database) -> int:
    with db.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(Vote)) or 0
