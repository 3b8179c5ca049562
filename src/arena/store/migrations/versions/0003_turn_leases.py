"""battles.turn_owner, battles.turn_lease_until: the turn lease shared by replicas

Which server process streams a battle's turn lives in the database, not in one process's
memory, so two replicas cannot both stream the same message, and a battle whose streaming
process died is usable again once its short lease runs out.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 19:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from arena.store.models import SafeString, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("battles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("turn_owner", SafeString(64), nullable=True))
        batch_op.add_column(sa.Column("turn_lease_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("battles", schema=None) as batch_op:
        batch_op.drop_column("turn_lease_until")
        batch_op.drop_column("turn_owner")
