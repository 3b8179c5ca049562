"""Voters' requests to keep their conversations out of released datasets.

Opting out records the session in ``release_opt_outs`` and marks every battle (and red-team
round) of the session ``release_excluded``; a battle created later by an opted-out session is
marked when it is created (``session_release_state``, called by ``battles.create_battle``; a
round is marked the same way). The mark stays on the battle after the session expires and its
row (and so its opt-out row) is deleted.

The two writers never miss each other on PostgreSQL: opting out locks the session row
``FOR UPDATE`` and battle creation reads it ``FOR SHARE`` before it looks for the opt-out,
so either the battle is created first (and the opt-out's UPDATE, a later statement, sees
it) or the opt-out commits first (and the battle's look-up, after the lock, sees it).
SQLite runs one write transaction at a time, so the same holds there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from arena.errors import NotFound
from arena.store.db import Database
from arena.store.models import utcnow
from arena.store.pipeline_tables import ReleaseOptOut
from arena.store.records import BATTLES, SESSIONS
from arena.store.redteam_tables import RedTeamRound

OPT_OUTS = ReleaseOptOut.__table__
REDTEAM_ROUNDS = RedTeamRound.__table__


def _opted_out(conn: Connection, session_id: str) -> bool:
    query = select(OPT_OUTS.c.session_id).where(OPT_OUTS.c.session_id == session_id)
    return conn.execute(query).first() is not None


def session_release_state(conn: Connection, session_id: str) -> tuple[bool, bool]:
    """(the session exists, it has opted out), inside a battle-creating transaction: the
    session row is read ``FOR SHARE`` so a concurrent opt-out waits for this battle."""
    found = conn.execute(
        select(SESSIONS.c.id).where(SESSIONS.c.id == session_id).with_for_update(read=True)
    ).first()
    if found is None:
        return False, False
    return True, _opted_out(conn, session_id)


def opt_out_session(db: Database, session_id: str, *, now: datetime | None = None) -> bool:
    """Record the opt-out and mark the session's battles. Returns False when the session
    had already opted out (nothing changes). NotFound when the session row is gone."""
    with db.session() as session:
        conn = session.connection()
        found = conn.execute(
            select(SESSIONS.c.id).where(SESSIONS.c.id == session_id).with_for_update()
        ).first()
        if found is None:
            raise NotFound("session not found", param="session_id")
        if _opted_out(conn, session_id):
            return False
        conn.execute(insert(OPT_OUTS).values(session_id=session_id, created_at=now or utcnow()))
        conn.execute(
            update(BATTLES)
            .where(BATTLES.c.session_id == session_id, BATTLES.c.release_excluded.is_(False))
            .values(release_excluded=True)
        )
        conn.execute(
            update(REDTEAM_ROUNDS)
            .where(
                REDTEAM_ROUNDS.c.session_id == session_id,
                REDTEAM_ROUNDS.c.release_excluded.is_(False),
            )
            .values(release_excluded=True)
        )
        return True


def is_opted_out(db: Database, session_id: str) -> bool:
    """Has this session asked to stay out of released datasets?"""
    if not session_id:
        return False
    with db.session(read_only=True) as session:
        return _opted_out(session.connection(), session_id)
