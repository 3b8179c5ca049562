"""votes.session_hash, voter_cleared_sessions: voter screen identities that outlive sessions

``votes.session_hash`` is the voting session's one-way hash, stored with the vote so a voter
flagged by session stays flagged after expired sessions are purged (that clears
``votes.session_id``). Existing votes are backfilled here, in batches, hashing in Python.
``voter_cleared_sessions`` lists the sessions the newest voter screen tested and cleared,
whose votes a flag on a shared IP (a NAT) does not take out.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 22:30:00.000000
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from arena.store.models import SafeString, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL_BATCH = 5000


def _session_hash(session_id: str) -> str:
    # A frozen copy of arena.store.voter_flags.session_judge as of this revision: a
    # migration must not change meaning when the application code moves on.
    return "s" + hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]


def _backfill_session_hashes() -> None:
    """Hash the session id of every vote that has one, a batch of rows at a time (by id, so
    memory stays flat on a large store)."""
    votes = sa.table(
        "votes",
        sa.column("id", sa.Integer),
        sa.column("session_id", sa.String),
        sa.column("session_hash", sa.String),
    )
    pending = (
        sa.select(votes.c.id, votes.c.session_id)
        .where(votes.c.session_id.is_not(None), votes.c.session_hash.is_(None))
        .order_by(votes.c.id)
        .limit(BACKFILL_BATCH)
    )
    write = (
        sa.update(votes)
        .where(votes.c.id == sa.bindparam("vote_id"))
        .values(session_hash=sa.bindparam("hash"))
    )
    bind = op.get_bind()
    last_id = 0
    while True:
        rows = bind.execute(pending.where(votes.c.id > last_id)).all()
        if not rows:
            return
        bind.execute(
            write, [{"vote_id": vote_id, "hash": _session_hash(sid)} for vote_id, sid in rows]
        )
        last_id = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_hash", SafeString(64), nullable=True))
    _backfill_session_hashes()
    op.create_table(
        "voter_cleared_sessions",
        sa.Column("session_hash", SafeString(64), nullable=False),
        sa.Column("screen_version", SafeString(32), nullable=False),
        sa.Column("screened_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_voter_cleared_sessions")),
    )


def downgrade() -> None:
    op.drop_table("voter_cleared_sessions")
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_column("session_hash")
