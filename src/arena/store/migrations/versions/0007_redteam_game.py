"""redteam_players, redteam_rounds, redteam_turns: the red-team game

Players (a keyed hash of their session and an optional nickname), rounds (a challenge
snapshot, the drawn model, limits and outcome) and their turns (prompt, answer, checks).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:31:10.338692
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from arena.store.models import SafeString, SafeText, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "redteam_players",
        sa.Column("player_id", SafeString(length=64), nullable=False),
        sa.Column("nickname", SafeString(length=32), nullable=True),
        sa.Column("nickname_key", SafeString(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("player_id", name=op.f("pk_redteam_players")),
        sa.UniqueConstraint("nickname_key", name=op.f("uq_redteam_players_nickname_key")),
    )
    op.create_table(
        "redteam_rounds",
        sa.Column("id", SafeString(length=32), nullable=False),
        sa.Column("player_id", SafeString(length=64), nullable=False),
        sa.Column("session_id", SafeString(length=32), nullable=True),
        sa.Column("ip_hash", SafeString(length=64), nullable=True),
        sa.Column("challenge_id", SafeString(length=64), nullable=False),
        sa.Column("challenge_kind", SafeString(length=16), nullable=False),
        sa.Column("challenge", sa.JSON(), nullable=False),
        sa.Column("model", SafeString(length=200), nullable=False),
        sa.Column("system_prompt", SafeText(), nullable=True),
        sa.Column("secret_core", SafeString(length=64), nullable=True),
        sa.Column("status", SafeString(length=16), nullable=False),
        sa.Column("end_reason", SafeString(length=16), nullable=True),
        sa.Column("success_turn", sa.Integer(), nullable=True),
        sa.Column("success_method", SafeString(length=32), nullable=True),
        sa.Column("attack_hash", SafeString(length=64), nullable=True),
        sa.Column("duplicate_of", SafeString(length=32), nullable=True),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("turn_limit", sa.Integer(), nullable=False),
        sa.Column("time_limit_s", sa.Float(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("deadline_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("busy_until", UTCDateTime(), nullable=True),
        sa.Column("release_excluded", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'won', 'lost')", name=op.f("ck_redteam_rounds_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redteam_rounds")),
    )
    with op.batch_alter_table("redteam_rounds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_redteam_rounds_attack", ["challenge_id", "model", "attack_hash"], unique=False
        )
        batch_op.create_index("ix_redteam_rounds_player", ["player_id", "started_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_redteam_rounds_started_at"), ["started_at"], unique=False
        )

    op.create_table(
        "redteam_turns",
        sa.Column("round_id", SafeString(length=32), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("prompt", SafeText(), nullable=False),
        sa.Column("prompt_hash", SafeString(length=64), nullable=False),
        sa.Column("answer", SafeText(), nullable=False),
        sa.Column("finish_reason", SafeString(length=32), nullable=True),
        sa.Column("detection", sa.JSON(), nullable=True),
        sa.Column("judge", sa.JSON(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("first_token_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["redteam_rounds.id"],
            name=op.f("fk_redteam_turns_round_id_redteam_rounds"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("round_id", "turn", name=op.f("pk_redteam_turns")),
    )


def downgrade() -> None:
    op.drop_table("redteam_turns")
    with op.batch_alter_table("redteam_rounds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_redteam_rounds_started_at"))
        batch_op.drop_index("ix_redteam_rounds_player")
        batch_op.drop_index("ix_redteam_rounds_attack")

    op.drop_table("redteam_rounds")
    op.drop_table("redteam_players")
