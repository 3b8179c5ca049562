"""Turn leases: which server process streams a battle's turn, held in the database.

Replicas share nothing but the database, so the guard against streaming the same message
twice, and the way a crashed process's turn is recovered, live here. Taking a lease is one
conditional UPDATE (it succeeds only when no unexpired lease exists), atomic on SQLite and
PostgreSQL alike; the holder renews it while streaming and clears it when the turn ends.
A process that dies stops renewing, and its lease expires after a few seconds: the battle's
unfinished turn then reads as failed and the battle is usable again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update

from arena.store.db import Database
from arena.store.records import BATTLES


def acquire_turn(db: Database, battle_id: str, owner: str, *, now: datetime, ttl_s: float) -> bool:
    """Take the battle's turn lease for ``owner``; False when another holder's is current."""
    with db.session() as session:
        result = session.execute(
            update(BATTLES)
            .where(
                and_(
                    BATTLES.c.id == battle_id,
                    or_(BATTLES.c.turn_lease_until.is_(None), BATTLES.c.turn_lease_until <= now),
                )
            )
            .values(turn_owner=owner, turn_lease_until=now + timedelta(seconds=ttl_s))
        )
        return result.rowcount == 1


def renew_turns(
    db: Database, battle_ids: Iterable[str], owner: str, *, now: datetime, ttl_s: float
) -> int:
    """Extend ``owner``'s leases on these battles; returns how many it still held."""
    ids = list(battle_ids)
    if not ids:
        return 0
    with db.session() as session:
        result = session.execute(
            update(BATTLES)
            .where(and_(BATTLES.c.id.in_(ids), BATTLES.c.turn_owner == owner))
            .values(turn_lease_until=now + timedelta(seconds=ttl_s))
        )
        return result.rowcount


def release_turn(db: Database, battle_id: str, owner: str) -> None:
    """Clear ``owner``'s lease on the battle (a lease taken over since is left alone)."""
    with db.session() as session:
        session.execute(
            update(BATTLES)
            .where(and_(BATTLES.c.id == battle_id, BATTLES.c.turn_owner == owner))
            .values(turn_owner=None, turn_lease_until=None)
        )
