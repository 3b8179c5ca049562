"""A session's past battles with their verdicts, newest first, and the few lookups behind
share links (battles by creation time, a chat's latest feedback). Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select

from arena.store.db import Database
from arena.store.records import BATTLES, VOTES


@dataclass(frozen=True, slots=True)
class Verdict:
    """A battle vote, or a direct chat's newest feedback (``message_id`` set)."""

    id: int
    type: str
    message_id: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PastBattle:
    id: str
    mode: str
    status: str
    created_at: datetime
    model_a: str
    model_b: str | None
    verdict: Verdict | None


def _verdicts(conn: object, battle_ids: list[str]) -> dict[str, Verdict]:
    """Per battle: its battle vote, else its newest feedback."""
    if not battle_ids:
        return {}
    rows = conn.execute(  # type: ignore[attr-defined]
        select(VOTES.c.battle_id, VOTES.c.id, VOTES.c.type, VOTES.c.message_id, VOTES.c.created_at)
        .where(VOTES.c.battle_id.in_(battle_ids))
        .order_by(VOTES.c.id)
    ).all()
    out: dict[str, Verdict] = {}
    for battle_id, vote_id, kind, message_id, created_at in rows:
        current = out.get(battle_id)
        if current is not None and current.message_id is None:
            continue  # a battle vote outranks any feedback
        out[battle_id] = Verdict(vote_id, kind, message_id, created_at)
    return out


def session_battles(
    db: Database,
    session_id: str,
    *,
    limit: int,
    before: tuple[datetime, str] | None = None,
) -> list[PastBattle]:
    """The session's battles, newest first (ties by id, descending), strictly after the
    ``before`` position (``(created_at, id)`` of the last one already listed)."""
    query = select(
        BATTLES.c.id,
        BATTLES.c.mode,
        BATTLES.c.status,
        BATTLES.c.created_at,
        BATTLES.c.model_a,
        BATTLES.c.model_b,
    ).where(BATTLES.c.session_id == session_id)
    if before is not None:
        created, battle_id = before
        query = query.where(
            or_(
                BATTLES.c.created_at < created,
                and_(BATTLES.c.created_at == created, BATTLES.c.id < battle_id),
            )
        )
    query = query.order_by(BATTLES.c.created_at.desc(), BATTLES.c.id.desc()).limit(limit)
    with db.session(read_only=True) as session:
        conn = session.connection()
        rows = conn.execute(query).all()
        verdicts = _verdicts(conn, [row.id for row in rows])
    return [
        PastBattle(
            row.id,
            row.mode,
            row.status,
            row.created_at,
            row.model_a,
            row.model_b,
            verdicts.get(row.id),
        )
        for row in rows
    ]


def battles_created_between(db: Database, start: datetime, end: datetime) -> list[str]:
    """Ids of the battles created in ``[start, end)`` (the ``created_at`` index answers)."""
    with db.session(read_only=True) as session:
        rows = session.execute(
            select(BATTLES.c.id).where(BATTLES.c.created_at >= start, BATTLES.c.created_at < end)
        ).all()
    return [row.id for row in rows]


def battle_verdict(db: Database, battle_id: str) -> Verdict | None:
    """The battle vote, else the newest feedback, of one battle."""
    with db.session(read_only=True) as session:
        return _verdicts(session.connection(), [battle_id]).get(battle_id)
