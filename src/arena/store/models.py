"""ORM tables of the durable store (SQLAlchemy 2 typed declarative).

These classes stay inside ``arena.store``; repositories hand callers frozen dataclasses.
Every schema change here needs an Alembic migration (tests compare the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from arena.errors import BadRequest

BATTLE_MODES = ("battle", "side_by_side", "direct")
BATTLE_VOTE_TYPES = ("a", "b", "tie", "bothbad")
FEEDBACK_VOTE_TYPES = ("upvote", "downvote", "flag")
MESSAGE_ROLES = ("system", "user", "assistant")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _without_nul(value: str | None) -> str | None:
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")


class SafeString(TypeDecorator[str]):
    """A string every backend stores alike: PostgreSQL refuses NUL characters where SQLite
    keeps them, so NUL becomes U+FFFD on the way in, everywhere. A lookup by an id holding a
    NUL (ids come from URLs, cookies and headers) then simply finds nothing."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        return _without_nul(value)


class SafeText(SafeString):
    """Unbounded text with the same NUL handling as ``SafeString``."""

    impl = Text
    cache_ok = True


def check_fits(value: str | None, column: Any, *, param: str) -> None:
    """BadRequest when ``value`` is longer than ``column`` holds. PostgreSQL refuses such a
    value and SQLite would silently keep it; checking first makes both answer the same."""
    limit = getattr(column.type, "length", None)
    if value is not None and limit is not None and len(value) > limit:
        raise BadRequest(f"{param} is longer than {limit} characters", param=param)


def fit(value: str | None, column: Any) -> str | None:
    """``value`` cut to what ``column`` holds, for metadata that is not worth an error (an
    upstream's unusual finish reason must not cost the answer it ends)."""
    limit = getattr(column.type, "length", None)
    return value[:limit] if value is not None and limit is not None else value


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: SafeString(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(SafeString(200))
    key_hash: Mapped[str] = mapped_column(SafeString(64), unique=True)
    prefix: Mapped[str] = mapped_column(SafeString(32), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    rpm_limit: Mapped[int | None]
    tpm_limit: Mapped[int | None]


class Worker(Base):
    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(SafeString(200), primary_key=True)
    model_names: Mapped[list[str]]
    url: Mapped[str] = mapped_column(SafeString(2000))
    kind: Mapped[str] = mapped_column(SafeString(50))
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    queue_length: Mapped[int] = mapped_column(default=0)
    healthy: Mapped[bool] = mapped_column(Boolean, default=True)
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    meta: Mapped[dict[str, Any] | None]


class ArenaSession(Base):
    """An anonymous visitor session; the id is a random token kept in a cookie."""

    __tablename__ = "arena_sessions"

    id: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ip_hash: Mapped[str | None] = mapped_column(SafeString(64))
    user_agent_hash: Mapped[str | None] = mapped_column(SafeString(64))


class StoredImage(Base):
    __tablename__ = "images"

    content_hash: Mapped[str] = mapped_column(SafeString(64), primary_key=True)
    mime_type: Mapped[str] = mapped_column(SafeString(100))
    width: Mapped[int]
    height: Mapped[int]
    byte_size: Mapped[int]
    storage_path: Mapped[str] = mapped_column(SafeString(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The bytes, shared by every replica; NULL for images stored before (read from disk).
    data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class ReplicaSetting(Base):
    """A fact the first replica recorded that every other one must match (never a secret)."""

    __tablename__ = "replica_settings"

    name: Mapped[str] = mapped_column(SafeString(100), primary_key=True)
    value: Mapped[str] = mapped_column(SafeString(200))
    origin: Mapped[str] = mapped_column(SafeString(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeaderboardSet(Base):
    """A published leaderboard artifact set, shared by every replica: the set's folder as one
    zip archive, and the newest vote id (``vote_watermark``) the set was computed from."""

    __tablename__ = "leaderboard_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    snapshot: Mapped[str] = mapped_column(SafeString(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    vote_watermark: Mapped[int] = mapped_column(index=True)
    archive: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class LeaderboardLease(Base):
    """Which replica computes the shared leaderboard now (one row per job name); taken with
    one conditional UPDATE, so only one replica recomputes per change."""

    __tablename__ = "leaderboard_leases"

    name: Mapped[str] = mapped_column(SafeString(100), primary_key=True)
    owner: Mapped[str | None] = mapped_column(SafeString(200))
    lease_until: Mapped[datetime | None]


class Battle(Base):
    """One arena round: two models (or one, in direct chat) answering the same prompts."""

    __tablename__ = "battles"
    __table_args__ = (
        CheckConstraint(_in("mode", BATTLE_MODES), name="mode"),
        CheckConstraint("turn_count >= 0", name="turn_count"),
    )

    id: Mapped[str] = mapped_column(SafeString(32), primary_key=True)
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("arena_sessions.id", ondelete="SET NULL"), index=True
    )
    mode: Mapped[str] = mapped_column(SafeString(20))
    model_a: Mapped[str] = mapped_column(SafeString(200), index=True)
    model_b: Mapped[str | None] = mapped_column(SafeString(200), index=True)
    left_model: Mapped[str | None] = mapped_column(SafeString(200))
    right_model: Mapped[str | None] = mapped_column(SafeString(200))
    leaked: Mapped[bool] = mapped_column(Boolean, default=False)
    leak_reason: Mapped[str | None] = mapped_column(SafeText)
    moderation_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    moderation_reason: Mapped[str | None] = mapped_column(SafeText)
    status: Mapped[str] = mapped_column(SafeString(32), default="open")
    turn_count: Mapped[int] = mapped_column(default=0)
    # Declared when the battle started: a vision chat (models drawn among vision models).
    # An anonymous battle takes images only when it is set, whatever models were drawn.
    vision: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The voter asked that this battle stay out of released datasets (kept after the session
    # expires and its link is cleared).
    release_excluded: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The turn lease (``arena.store.turn_leases``): which server process streams this
    # battle's turn, until when unless it renews. Shared by every replica on the database.
    turn_owner: Mapped[str | None] = mapped_column(SafeString(64))
    turn_lease_until: Mapped[datetime | None] = mapped_column()

    conversations: Mapped[list[Conversation]] = relationship(
        back_populates="battle", cascade="all, delete-orphan", passive_deletes=True
    )


class Conversation(Base):
    """One model's side of a battle (side ``a`` or ``b``), or a chat outside any battle."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("battle_id", "side"),
        CheckConstraint("side IN ('a', 'b')", name="side"),
    )

    id: Mapped[str] = mapped_column(SafeString(32), primary_key=True)
    battle_id: Mapped[str | None] = mapped_column(
        ForeignKey("battles.id", ondelete="CASCADE"), index=True
    )
    side: Mapped[str | None] = mapped_column(SafeString(1))
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("arena_sessions.id", ondelete="SET NULL")
    )
    model: Mapped[str] = mapped_column(SafeString(200))
    params: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    battle: Mapped[Battle | None] = relationship(back_populates="conversations")
    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        order_by="Message.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "position"),
        CheckConstraint(_in("role", MESSAGE_ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    position: Mapped[int]
    role: Mapped[str] = mapped_column(SafeString(16))
    content: Mapped[str] = mapped_column(SafeText, default="")
    model: Mapped[str | None] = mapped_column(SafeString(200))
    params: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    finish_reason: Mapped[str | None] = mapped_column(SafeString(32))
    error: Mapped[str | None] = mapped_column(SafeText)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    images: Mapped[list[MessageImage]] = relationship(
        order_by="MessageImage.position", cascade="all, delete-orphan", passive_deletes=True
    )


class MessageImage(Base):
    """Images attached to a message, in order, by content hash."""

    __tablename__ = "message_images"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    image_hash: Mapped[str] = mapped_column(ForeignKey("images.content_hash"), index=True)


class Vote(Base):
    """A battle vote (a/b/tie/bothbad: at most one per battle, enforced by a unique index on
    ``battle_id`` over rows without a message) or direct-chat feedback on one message
    (upvote/downvote/flag: any number of rows)."""

    __tablename__ = "votes"
    __table_args__ = (
        CheckConstraint(
            f"({_in('type', BATTLE_VOTE_TYPES)} AND message_id IS NULL) OR "
            f"({_in('type', FEEDBACK_VOTE_TYPES)} AND message_id IS NOT NULL)",
            name="type",
        ),
        Index(
            "uq_votes_battle_vote",
            "battle_id",
            unique=True,
            sqlite_where=text("message_id IS NULL"),
            postgresql_where=text("message_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    battle_id: Mapped[str] = mapped_column(ForeignKey("battles.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(SafeString(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("arena_sessions.id", ondelete="SET NULL")
    )
    ip_hash: Mapped[str | None] = mapped_column(SafeString(64))
    # The voting session's one-way hash (``voter_flags.session_judge``), written with the
    # vote: it outlives the session row (purging expired sessions clears ``session_id``), so
    # a voter flagged by session stays flagged after the purge.
    session_hash: Mapped[str | None] = mapped_column(SafeString(64))


# The pipeline's tables share this metadata (migrations are compared against all of it).
from arena.store import pipeline_tables as _pipeline_tables  # noqa: E402,F401
from arena.store import redteam_tables as _redteam_tables  # noqa: E402,F401
