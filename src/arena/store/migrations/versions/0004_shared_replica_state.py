"""images.data, replica_settings: what every replica behind one balancer must share

Image bytes move into the database (``images.data``) so any replica serves an image another
one received; rows stored before keep ``data`` NULL and are read from the data dir they
were written to until they are uploaded again. ``replica_settings`` holds facts the first
replica recorded (a fingerprint of the secret key, never the key) that the others are
checked against at start.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 20:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from arena.store.models import SafeString, UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data", sa.LargeBinary(), nullable=True))
    op.create_table(
        "replica_settings",
        sa.Column("name", SafeString(100), nullable=False),
        sa.Column("value", SafeString(200), nullable=False),
        sa.Column("origin", SafeString(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_replica_settings")),
    )


def downgrade() -> None:
    op.drop_table("replica_settings")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("data")
