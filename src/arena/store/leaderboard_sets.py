"""Published leaderboard sets and the recompute lease, shared by every replica.

Replicas behind one balancer share nothing but the database: the replica that recomputes the
leaderboard publishes the artifact set here (one archive plus the newest vote id it covers),
and every replica downloads the newest set into its own data directory. The lease is one
conditional UPDATE (atomic on SQLite and PostgreSQL alike), so only one replica computes per
change. The holder renews its short lease while it computes, so a long recomputation keeps
it and a holder that dies stops mattering within one lease time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update

from arena.store.db import Database
from arena.store.models import LeaderboardLease, LeaderboardSet, ReplicaSetting, Vote, utcnow

RECOMPUTE_JOB = "leaderboard"


@dataclass(frozen=True)
class PublishedHead:
    """The newest published set (``set_id`` None when there is none) and the store's newest
    battle vote id, read together in one cheap query."""

    set_id: int | None
    set_watermark: int
    vote_watermark: int
    # The data pipeline's stamp now, and the one the newest set was computed from: tags and
    # voter flags change the board without a new vote (``mark_pipeline_changed``).
    pipeline_stamp: str = ""
    set_pipeline_stamp: str = ""

    @property
    def stale(self) -> bool:
        if self.vote_watermark > self.set_watermark:
            return True
        return self.set_id is not None and self.pipeline_stamp != self.set_pipeline_stamp


# Rows of ``replica_settings`` (shared by every replica): the stamp each pipeline run that
# changed tags or flags sets anew, and "<set id>:<stamp>" of the newest published set.
PIPELINE_STAMP = "pipeline_stamp"
SET_PIPELINE_STAMP = "leaderboard_pipeline_stamp"


# Only battle votes move the board: direct-chat feedback (rows with a message) never enters
# it, so it must not make the published set look stale and trigger a recomputation.
NEWEST_BATTLE_VOTE = select(func.max(Vote.id)).where(Vote.message_id.is_(None))


def vote_watermark(db: Database) -> int:
    """The newest battle vote id (0 without any): a set computed after it includes every
    battle vote."""
    with db.session(read_only=True) as session:
        return session.scalar(NEWEST_BATTLE_VOTE) or 0


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
        NEWEST_BATTLE_VOTE.scalar_subquery(),
        _setting(PIPELINE_STAMP),
        _setting(SET_PIPELINE_STAMP),
    )
    with db.session(read_only=True) as session:
        set_id, set_watermark, votes, stamp, covered = session.execute(query).one()
    covered_id, _, covered_stamp = (covered or "").partition(":")
    return PublishedHead(
        set_id,
        set_watermark or 0,
        votes or 0,
        stamp or "",
        covered_stamp if set_id is not None and covered_id == str(set_id) else "",
    )


def _setting(name: str) -> Any:
    return select(ReplicaSetting.value).where(ReplicaSetting.name == name).scalar_subquery()


def _put_setting(db: Database, session: Any, name: str, value: str, origin: str) -> None:
    statement = db.conflict_insert(ReplicaSetting).values(
        name=name, value=value, origin=origin, created_at=utcnow()
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"value": statement.excluded.value, "created_at": statement.excluded.created_at},
        )
    )


def mark_pipeline_changed(db: Database) -> str:
    """Say that tags or voter flags changed: every replica's next check finds the published
    set stale and one recomputes it. Returns the new stamp."""
    stamp = uuid.uuid4().hex
    with db.session() as session:
        _put_setting(db, session, PIPELINE_STAMP, stamp, "arena pipeline run")
    return stamp


def publish_set(
    db: Database,
    snapshot: str,
    watermark: int,
    archive: bytes,
    *,
    keep: int = 10,
    pipeline_stamp: str | None = None,
) -> int:
    """Store a computed set and drop all but the newest ``keep``; returns the new set's id
    (ids grow, so the highest id is the newest). ``pipeline_stamp``: the pipeline stamp read
    before computing (``PublishedHead.pipeline_stamp``), which the set then covers."""
    with db.session() as session:
        row = LeaderboardSet(snapshot=snapshot, vote_watermark=watermark, archive=archive)
        session.add(row)
        session.flush()
        if pipeline_stamp is not None:
            covered = f"{row.id}:{pipeline_stamp}"
            _put_setting(db, session, SET_PIPELINE_STAMP, covered, "leaderboard")
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


def renew_lease(
    db: Database, owner: str, *, now: datetime, ttl_s: float, name: str = RECOMPUTE_JOB
) -> bool:
    """Extend ``owner``'s lease to ``now + ttl_s``; False when it is no longer the holder
    (its lease expired and another replica took it)."""
    with db.session() as session:
        result = session.execute(
            update(LeaderboardLease)
            .where(and_(LeaderboardLease.name == name, LeaderboardLease.owner == owner))
            .values(lease_until=now + timedelta(seconds=ttl_s))
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
