"""battle_tags, voter_flags, release_opt_outs, battles.release_excluded: the data pipeline

Tags computed by ``arena pipeline run`` (each with its tagger and version), voters flagged by
the anomalous-voter screen, and voters' requests to stay out of released datasets.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 15:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from arena.store.models import SafeString, SafeText, UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "battle_tags",
        sa.Column("battle_id", SafeString(32), nullable=False),
        sa.Column("name", SafeString(64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("status", SafeString(16), nullable=False),
        sa.Column("tagger", SafeString(64), nullable=False),
        sa.Column("version", SafeString(32), nullable=False),
        sa.Column("detail", SafeText(), nullable=True),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["battle_id"],
            ["battles.id"],
            name=op.f("fk_battle_tags_battle_id_battles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("battle_id", "name", name=op.f("pk_battle_tags")),
    )
    with op.batch_alter_table("battle_tags", schema=None) as batch_op:
        batch_op.create_index("ix_battle_tags_name_version", ["name", "version"], unique=False)
    op.create_table(
        "voter_flags",
        sa.Column("voter_kind", SafeString(16), nullable=False),
        sa.Column("voter_hash", SafeString(64), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("reason", SafeText(), nullable=False),
        sa.Column("screen_version", SafeString(32), nullable=False),
        sa.Column("flagged_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("voter_kind", "voter_hash", name=op.f("pk_voter_flags")),
    )
    op.create_table(
        "release_opt_outs",
        sa.Column("session_id", SafeString(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["arena_sessions.id"],
            name=op.f("fk_release_opt_outs_session_id_arena_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_release_opt_outs")),
    )
    with op.batch_alter_table("battles", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "release_excluded", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("battles", schema=None) as batch_op:
        batch_op.drop_column("release_excluded")
    op.drop_table("release_opt_outs")
    op.drop_table("voter_flags")
    with op.batch_alter_table("battle_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_battle_tags_name_version")
    op.drop_table("battle_tags")
