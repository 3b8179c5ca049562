"""Tables the data pipeline writes: tags per battle, flagged voters and the sessions the
voter screen cleared, release opt-outs.

Each tag row records the tagger that computed it and its version, so ``arena pipeline run``
re-runs only what is new or whose tagger changed. Flags name a voter by a keyed hash (the
vote's IP hash or a hash of the session id), never by the session cookie itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from arena.store.models import Base, SafeString, SafeText, utcnow

TAG_STATUSES = ("ok", "unparsable", "error")
VOTER_KINDS = ("session", "ip")


class BattleTag(Base):
    """One tag of one battle (its user prompts): ``value`` is JSON (a bool, a number, a
    language name, a dict of criteria); ``status`` says whether a labeller's answer parsed."""

    __tablename__ = "battle_tags"
    __table_args__ = (Index("ix_battle_tags_name_version", "name", "version"),)

    battle_id: Mapped[str] = mapped_column(
        SafeString(32), ForeignKey("battles.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(SafeString(16), default="ok")
    tagger: Mapped[str] = mapped_column(SafeString(64))
    version: Mapped[str] = mapped_column(SafeString(32))
    detail: Mapped[str | None] = mapped_column(SafeText)
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class VoterFlag(Base):
    """A voter the anomalous-voter screen flagged; their votes leave the ratings by default."""

    __tablename__ = "voter_flags"

    voter_kind: Mapped[str] = mapped_column(SafeString(16), primary_key=True)
    voter_hash: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    votes: Mapped[int] = mapped_column(Integer)
    statistic: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(SafeText)
    screen_version: Mapped[str] = mapped_column(SafeString(32))
    flagged_at: Mapped[datetime] = mapped_column(default=utcnow)


class VoterClearedSession(Base):
    """A session the newest screen tested (it had enough votes) and did not flag: a flag on
    an IP it shares (a NAT) does not take its votes out (``FlaggedIdentities``)."""

    __tablename__ = "voter_cleared_sessions"

    session_hash: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    screen_version: Mapped[str] = mapped_column(SafeString(32))
    screened_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReleaseOptOut(Base):
    """A session that asked for its conversations to stay out of released datasets."""

    __tablename__ = "release_opt_outs"

    session_id: Mapped[str] = mapped_column(
        SafeString(64), ForeignKey("arena_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
