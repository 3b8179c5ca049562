"""Tables of the red-team game: players (by a keyed hash of their session), rounds, turns.

A player has no account: ``player_id`` is an HMAC of the session id under the server secret,
so the store never links a nickname to a session cookie in the clear. A round keeps a
snapshot of its challenge (the operator may edit the file later) and, for a leak challenge,
the planted canary, so that exports and replays can check success again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from arena.store.models import Base, SafeString, SafeText, _in, utcnow

ROUND_STATUSES = ("active", "won", "lost")
END_REASONS = ("success", "gave_up", "time_limit", "turn_limit")


class RedTeamPlayer(Base):
    __tablename__ = "redteam_players"

    player_id: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    nickname: Mapped[str | None] = mapped_column(SafeString(32))
    # The nickname case-folded: two players cannot take names that differ only by case.
    nickname_key: Mapped[str | None] = mapped_column(SafeString(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RedTeamRound(Base):
    __tablename__ = "redteam_rounds"
    __table_args__ = (
        CheckConstraint(_in("status", ROUND_STATUSES), name="status"),
        Index("ix_redteam_rounds_player", "player_id", "started_at"),
        Index("ix_redteam_rounds_attack", "challenge_id", "model", "attack_hash"),
    )

    id: Mapped[str] = mapped_column(SafeString(32), primary_key=True)
    player_id: Mapped[str] = mapped_column(SafeString(64))
    session_id: Mapped[str | None] = mapped_column(SafeString(32))
    ip_hash: Mapped[str | None] = mapped_column(SafeString(64))
    challenge_id: Mapped[str] = mapped_column(SafeString(64))
    challenge_kind: Mapped[str] = mapped_column(SafeString(16))
    challenge: Mapped[Any] = mapped_column(JSON)
    model: Mapped[str] = mapped_column(SafeString(200))
    system_prompt: Mapped[str | None] = mapped_column(SafeText)
    secret_core: Mapped[str | None] = mapped_column(SafeString(64))
    status: Mapped[str] = mapped_column(SafeString(16), default="active")
    end_reason: Mapped[str | None] = mapped_column(SafeString(16))
    success_turn: Mapped[int | None] = mapped_column(Integer)
    success_method: Mapped[str | None] = mapped_column(SafeString(32))
    attack_hash: Mapped[str | None] = mapped_column(SafeString(64))
    duplicate_of: Mapped[str | None] = mapped_column(SafeString(32))
    turns: Mapped[int] = mapped_column(Integer, default=0)
    turn_limit: Mapped[int] = mapped_column(Integer)
    time_limit_s: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    deadline_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    # A turn streaming now holds the round until this time (one turn at a time, any replica).
    busy_until: Mapped[datetime | None] = mapped_column()
    release_excluded: Mapped[bool] = mapped_column(Boolean, default=False)


class RedTeamTurn(Base):
    __tablename__ = "redteam_turns"

    round_id: Mapped[str] = mapped_column(
        SafeString(32), ForeignKey("redteam_rounds.id", ondelete="CASCADE"), primary_key=True
    )
    turn: Mapped[int] = mapped_column(Integer, primary_key=True)
    prompt: Mapped[str] = mapped_column(SafeText)
    prompt_hash: Mapped[str] = mapped_column(SafeString(64))
    answer: Mapped[str] = mapped_column(SafeText)
    finish_reason: Mapped[str | None] = mapped_column(SafeString(32))
    detection: Mapped[Any] = mapped_column(JSON, nullable=True)
    judge: Mapped[Any] = mapped_column(JSON, nullable=True)
    started_at: Mapped[datetime] = mapped_column()
    first_token_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column()
