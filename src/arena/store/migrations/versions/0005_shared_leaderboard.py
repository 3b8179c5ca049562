"""leaderboard_sets, leaderboard_leases: one leaderboard for every replica

Published artifact sets live in the database (each set's folder as one zip archive, with the
newest vote id it covers), so every replica shows the same board; a lease row makes sure only
one replica recomputes per change.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from arena.store.models import SafeString, UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leaderboard_sets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("snapshot", SafeString(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("vote_watermark", sa.Integer(), nullable=False),
        sa.Column("archive", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_sets")),
    )
    with op.batch_alter_table("leaderboard_sets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_leaderboard_sets_vote_watermark"), ["vote_watermark"], unique=False
        )
    op.create_table(
        "leaderboard_leases",
        sa.Column("name", SafeString(100), nullable=False),
        sa.Column("owner", SafeString(200), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leaderboard_leases")),
    )


def downgrade() -> None:
    op.drop_table("leaderboard_leases")
    with op.batch_alter_table("leaderboard_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leaderboard_sets_vote_watermark"))
    op.drop_table("leaderboard_sets")
