"""Published leaderboard sets and the recompute lease, shared by every replica.

Replicas behind one balancer share nothing but the database: the replica that recomputes the
leaderboard publishes the artifact set here (one archive plus the newest vote id it covers),
and every replica downloads the newest set into its own data directory. The lease is one
conditional UPDATE (atomic on SQLite and PostgreSQL alike), so only one replica computes per
change; a holder that dies stops mattering once its lease expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update

from arena.store.db import Database
from arena.store.models import LeaderboardLease, LeaderboardSet, Vote

RECOMPUTE_JOB = "leaderboard"


@dataclass(frozen=True)
class PublishedHead:
    """The newest published set (``set_id`` None when there is none) and the store's newest
    vote id, read together in one cheap query."""

    set_id: int | None
    set_watermark: int
    vote_watermark: int

    @property
    def stale(self) -> bool:
        return self.vote_watermark > self.set_watermark


def vote_watermark(db: Database) -> int:
    """The newest vote id (0 without votes): a set computed after it includes every vote."""
    with db.session(read_only=True) as session:
        return session.scalar(select(func.max(Vote.id))) or 0


def published_head(db: Database) -> PublishedHead:
    newest = (
        select(LeaderboardSet.id, LeaderboardSet.vote_watermark)
        .order_by(LeaderboardSet.id.desc())
        .limit(1)
        .subquery()
    )
    query = select(
        select(newest.c.id).scalar_subquery(),
        select(newest.c.vote_watermark).scalar_subquery(),
        select(func.max(Vote.id)).scalar_subquery(),
    )
    with db.session(read_only=True) as session:
        set_id, set_watermark, votes = session.execute(query).one()
    return PublishedHead(set_id, set_watermark or 0, votes or 0)


def publish_set(
    db: Database, snapshot: str, watermark: int, archive: bytes, *, keep: int = 10
) -> int:
    """Store a computed set and drop all but the newest ``keep``; returns the new set's id
    (ids grow, so the highest id is the newest)."""
    with db.session() as session:
        row = LeaderboardSet(snapshot=snapshot, vote_watermark=watermark, archive=archive)
        session.add(row)
        session.flush()
        newest = (
            select(LeaderboardSet.id).order_by(LeaderboardSet.id.desc()).limit(max(keep, 1))
        ).scalar_subquery()
        session.execute(delete(LeaderboardSet).where(LeaderboardSet.id.not_in(newest)))
        return row.id


def load_archive(db: Database, set_id: int) -> bytes | None:
    with db.session(read_only=True) as session:
        return session.scalar(select(LeaderboardSet.archive).where(LeaderboardSet.id == set_id))


def count_sets(db: Database) -> int:
    with db.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(LeaderboardSet)) or 0


def acquire_lease(
    db: Database, owner: str, *, now: datetime, ttl_s: float, name: str = RECOMPUTE_JOB
) -> bool:
    """Take the recompute lease for ``owner``; False while another holder's is current."""
    until = now + timedelta(seconds=ttl_s)
    with db.session() as session:
        session.execute(  # the row, once: the UPDATE below is then the only way to take it
            db.conflict_insert(LeaderboardLease)
            .values(name=name, owner=None, lease_until=None)
            .on_conflict_do_nothing(index_elements=["name"])
        )
    with db.session() as session:
        result = session.execute(
            update(LeaderboardLease)
            .where(
                and_(
                    LeaderboardLease.name == name,
                    or_(
                        LeaderboardLease.lease_until.is_(None), LeaderboardLease.lease_until <= now
                    ),
                )
            )
            .values(owner=owner, lease_until=until)
        )
        return result.rowcount == 1


def release_lease(db: Database, owner: str, *, name: str = RECOMPUTE_JOB) -> None:
    """Clear ``owner``'s lease (a lease taken over since is left alone)."""
    with db.session() as session:
        session.execute(
            update(LeaderboardLease)
            .where(and_(LeaderboardLease.name == name, LeaderboardLease.owner == owner))
            .values(owner=None, lease_until=None)
        )
