"""What the battle store hands out and how it reads rows: the frozen battle, conversation
and message records, the row → record conversions that ``battles`` and ``conversations``
share, the Core table handles of the hot paths, and random ids (``new_token``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from arena.store.models import (
    ArenaSession,
    Battle,
    Conversation,
    Message,
    MessageImage,
    StoredImage,
    Vote,
)

TWO_MODEL_MODES = ("battle", "side_by_side")

# The hot paths of a battle (create, append a message, rebuild, vote) use Core statements on
# these tables: the ORM's unit of work cost several times more CPU per call, and in the web
# app that CPU is taken from the event loop (one GIL).
BATTLES = Battle.__table__
CONVERSATIONS = Conversation.__table__
MESSAGES = Message.__table__
MESSAGE_IMAGES = MessageImage.__table__
VOTES = Vote.__table__
SESSIONS = ArenaSession.__table__
IMAGES = StoredImage.__table__


def new_token() -> str:
    """A random opaque id (uuid4 hex): never derived from model names or times."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class MessageInfo:
    id: int
    conversation_id: str
    position: int
    role: str
    content: str
    model: str | None
    params: dict[str, Any] | None = field(hash=False)
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None
    error: str | None
    image_hashes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: str
    battle_id: str | None
    side: str | None
    session_id: str | None
    model: str
    params: dict[str, Any] | None = field(hash=False)
    created_at: datetime
    messages: tuple[MessageInfo, ...]


@dataclass(frozen=True, slots=True)
class BattleInfo:
    id: str
    session_id: str | None
    mode: str
    model_a: str
    model_b: str | None
    left_model: str | None
    right_model: str | None
    leaked: bool
    leak_reason: str | None
    moderation_flagged: bool
    moderation_reason: str | None
    status: str
    turn_count: int
    created_at: datetime
    updated_at: datetime
    conversation_a_id: str | None
    conversation_b_id: str | None
    vision: bool = False
    turn_lease_until: datetime | None = None

    @property
    def anony(self) -> bool:
        return self.mode == "battle"


def message_info(row: Message) -> MessageInfo:
    columns = {c.name: getattr(row, c.name) for c in MESSAGES.c}
    info = message_info_from(columns, prefix="")
    return replace(info, image_hashes=tuple(image.image_hash for image in row.images))


def conversation_info(row: Conversation) -> ConversationInfo:
    columns = {c.name: getattr(row, c.name) for c in CONVERSATIONS.c}
    return conversation_info_from(columns, tuple(message_info(m) for m in row.messages))


def conversation_info_from(
    row: Mapping[str, Any], messages: tuple[MessageInfo, ...], *, prefix: str = ""
) -> ConversationInfo:
    params = row[prefix + "params"]
    return ConversationInfo(
        id=row[prefix + "id"],
        battle_id=row[prefix + "battle_id"],
        side=row[prefix + "side"],
        session_id=row[prefix + "session_id"],
        model=row[prefix + "model"],
        params=dict(params) if params is not None else None,
        created_at=row[prefix + "created_at"],
        messages=messages,
    )


def message_info_from(row: Mapping[str, Any], *, prefix: str = "m_") -> MessageInfo:
    """A message from its columns (named ``prefix`` + column in a joined row)."""
    params = row[prefix + "params"]
    return MessageInfo(
        id=row[prefix + "id"],
        conversation_id=row[prefix + "conversation_id"],
        position=row[prefix + "position"],
        role=row[prefix + "role"],
        content=row[prefix + "content"],
        model=row[prefix + "model"],
        params=dict(params) if params is not None else None,
        created_at=row[prefix + "created_at"],
        started_at=row[prefix + "started_at"],
        finished_at=row[prefix + "finished_at"],
        prompt_tokens=row[prefix + "prompt_tokens"],
        completion_tokens=row[prefix + "completion_tokens"],
        finish_reason=row[prefix + "finish_reason"],
        error=row[prefix + "error"],
        image_hashes=(),
    )


def battle_info(row: Battle) -> BattleInfo:
    columns = {c.name: getattr(row, c.name) for c in BATTLES.c}
    return battle_info_from(columns, {c.side: c.id for c in row.conversations})


def battle_info_from(row: Mapping[str, Any], conversation_ids: dict[str | None, str]) -> BattleInfo:
    return BattleInfo(
        id=row["id"],
        session_id=row["session_id"],
        mode=row["mode"],
        model_a=row["model_a"],
        model_b=row["model_b"],
        left_model=row["left_model"],
        right_model=row["right_model"],
        leaked=bool(row["leaked"]),
        leak_reason=row["leak_reason"],
        moderation_flagged=bool(row["moderation_flagged"]),
        moderation_reason=row["moderation_reason"],
        status=row["status"],
        turn_count=row["turn_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        conversation_a_id=conversation_ids.get("a"),
        conversation_b_id=conversation_ids.get("b"),
        vision=bool(row["vision"]),
        turn_lease_until=row.get("turn_lease_until"),
    )
