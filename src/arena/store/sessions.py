"""Anonymous arena sessions: create one with a random token id, look it up while it is
valid, drop the expired ones. Every write commits before the function returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete

from arena.errors import BadRequest
from arena.store.db import Database
from arena.store.models import ArenaSession, check_fits, utcnow
from arena.store.records import new_token


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    created_at: datetime
    expires_at: datetime
    ip_hash: str | None
    user_agent_hash: str | None


def _session_info(row: ArenaSession) -> SessionInfo:
    return SessionInfo(row.id, row.created_at, row.expires_at, row.ip_hash, row.user_agent_hash)


def create_session(
    db: Database,
    *,
    ttl_s: float,
    ip_hash: str | None = None,
    user_agent_hash: str | None = None,
    now: datetime | None = None,
) -> SessionInfo:
    """A new anonymous session with a random token id, valid for ``ttl_s`` seconds."""
    if ttl_s <= 0:
        raise BadRequest("session ttl must be positive")
    check_fits(ip_hash, ArenaSession.ip_hash, param="ip_hash")
    check_fits(user_agent_hash, ArenaSession.user_agent_hash, param="user_agent_hash")
    now = now or utcnow()
    row = ArenaSession(
        id=new_token(),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        ip_hash=ip_hash,
        user_agent_hash=user_agent_hash,
    )
    with db.session() as session:
        session.add(row)
        session.flush()
        return _session_info(row)


def get_session(
    db: Database, session_id: str, *, now: datetime | None = None
) -> SessionInfo | None:
    """The session if it exists and has not expired, else None."""
    if not session_id:
        return None
    with db.session(read_only=True) as session:
        row = session.get(ArenaSession, session_id)
        if row is None or row.expires_at <= (now or utcnow()):
            return None
        return _session_info(row)


def delete_expired_sessions(db: Database, *, now: datetime | None = None) -> int:
    """Drop expired sessions. Their battles and votes stay and lose the session link; a
    vote keeps its session's one-way hash (``votes.session_hash``), so the voter screen's
    session flags still find it."""
    with db.session() as session:
        result = session.execute(
            delete(ArenaSession).where(ArenaSession.expires_at <= (now or utcnow()))
        )
        return result.rowcount
