"""Conversations and their messages: a conversation outside any battle, reading one back,
appending messages (a user message raises its battle's turn count in the same
transaction) and completing a message written while streaming. Every write commits before
the function returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from arena.errors import BadRequest, Conflict, NotFound
from arena.store.battles import battle_tree
from arena.store.db import Database
from arena.store.models import MESSAGE_ROLES, Conversation, Message, check_fits, fit, utcnow
from arena.store.records import (
    BATTLES,
    CONVERSATIONS,
    IMAGES,
    MESSAGE_IMAGES,
    MESSAGES,
    ConversationInfo,
    MessageInfo,
    conversation_info,
    message_info,
    new_token,
)


def _load_conversation(session: Session, conversation_id: str) -> Conversation:
    row = session.scalars(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .options(selectinload(Conversation.messages).selectinload(Message.images))
    ).first()
    if row is None:
        raise NotFound(f"conversation {conversation_id!r} not found", param="conversation_id")
    return row


def create_conversation(
    db: Database,
    *,
    model: str,
    session_id: str | None = None,
    params: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ConversationInfo:
    """A conversation outside any battle (e.g. API traffic kept for datasets)."""
    check_fits(model, Conversation.model, param="model")
    row = Conversation(
        id=new_token(),
        model=model,
        session_id=session_id,
        params=dict(params) if params else None,
        created_at=now or utcnow(),
    )
    with db.session() as session:
        session.add(row)
        session.flush()
        return ConversationInfo(
            row.id, None, None, row.session_id, row.model, row.params, row.created_at, ()
        )


def get_conversation(db: Database, conversation_id: str) -> ConversationInfo:
    with db.session(read_only=True) as session:
        return conversation_info(_load_conversation(session, conversation_id))


def battle_conversations(db: Database, battle_id: str) -> tuple[ConversationInfo, ...]:
    """The battle's conversations, side ``a`` first; NotFound for an unknown battle."""
    with db.session(read_only=True) as session:
        return battle_tree(session.connection(), battle_id)[1]


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append (``add_messages``); fields as in ``MessageInfo``."""

    conversation_id: str
    role: str
    content: str = ""
    model: str | None = None
    params: dict[str, Any] | None = field(default=None, hash=False)
    image_hashes: tuple[str, ...] = ()
    started_at: datetime | None = None
    finished_at: datetime | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None


def add_message(
    db: Database,
    conversation_id: str,
    *,
    role: str,
    content: str = "",
    model: str | None = None,
    params: dict[str, Any] | None = None,
    image_hashes: Sequence[str] = (),
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    finish_reason: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> MessageInfo:
    """Append a message. A user message also raises the battle's turn count to the number of
    user messages in this conversation. Images must be stored first (by content hash)."""
    message = NewMessage(
        conversation_id,
        role,
        content,
        model,
        params,
        tuple(image_hashes),
        started_at,
        finished_at,
        prompt_tokens,
        completion_tokens,
        finish_reason,
        error,
    )
    return add_messages(db, [message], now=now)[0]


def add_messages(
    db: Database, messages: Sequence[NewMessage], *, now: datetime | None = None
) -> list[MessageInfo]:
    """Append several messages (to one or several conversations, in this order) in one
    transaction and a handful of statements: a turn of a battle writes one per side."""
    for m in messages:
        if m.role not in MESSAGE_ROLES:
            raise BadRequest(f"role must be one of {MESSAGE_ROLES}, got {m.role!r}", param="role")
        check_fits(m.model, Message.model, param="model")
    if not messages:
        return []
    now = now or utcnow()
    conversation_ids = list(dict.fromkeys(m.conversation_id for m in messages))
    try:
        with db.session() as session:
            conn = session.connection()
            # FOR UPDATE (PostgreSQL) serialises appends to one conversation, so two
            # writers never compute the same position; SQLite has one writer anyway.
            battle_of = dict(
                conn.execute(
                    select(CONVERSATIONS.c.id, CONVERSATIONS.c.battle_id)
                    .where(CONVERSATIONS.c.id.in_(conversation_ids))
                    .order_by(CONVERSATIONS.c.id)
                    .with_for_update()
                ).all()
            )
            for conversation_id in conversation_ids:
                if conversation_id not in battle_of:
                    raise NotFound(f"conversation {conversation_id!r} not found")
            _check_images_known(conn, {h for m in messages for h in m.image_hashes})
            next_position, user_turns = _positions_and_turns(conn, conversation_ids)
            rows = []
            for m in messages:
                position = next_position[m.conversation_id]
                next_position[m.conversation_id] = position + 1
                if m.role == "user":
                    user_turns[m.conversation_id] += 1
                rows.append(
                    {
                        "conversation_id": m.conversation_id,
                        "position": position,
                        "role": m.role,
                        "content": m.content,
                        "model": m.model,
                        "params": dict(m.params) if m.params else None,
                        "created_at": now,
                        "started_at": m.started_at,
                        "finished_at": m.finished_at,
                        "prompt_tokens": m.prompt_tokens,
                        "completion_tokens": m.completion_tokens,
                        "finish_reason": fit(m.finish_reason, Message.finish_reason),
                        "error": m.error,
                    }
                )
            ids = conn.scalars(
                insert(MESSAGES).returning(MESSAGES.c.id, sort_by_parameter_order=True), rows
            ).all()
            images = [
                {"message_id": message_id, "position": i, "image_hash": h}
                for message_id, m in zip(ids, messages, strict=True)
                for i, h in enumerate(m.image_hashes)
            ]
            if images:
                conn.execute(insert(MESSAGE_IMAGES), images)
            _raise_turn_counts(conn, messages, battle_of, user_turns, now)
            return [
                MessageInfo(id=message_id, image_hashes=m.image_hashes, **row)
                for message_id, m, row in zip(ids, messages, rows, strict=True)
            ]
    except IntegrityError as e:
        raise Conflict("the message was rejected by the database") from e


def _check_images_known(conn: Connection, hashes: set[str]) -> None:
    if not hashes:
        return
    known = set(
        conn.scalars(select(IMAGES.c.content_hash).where(IMAGES.c.content_hash.in_(hashes)))
    )
    for content_hash in sorted(hashes - known):
        raise BadRequest(f"unknown image {content_hash!r}", param="image_hashes")


def _positions_and_turns(
    conn: Connection, conversation_ids: list[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """Per conversation: the next free position and the number of user messages so far."""
    next_position = dict.fromkeys(conversation_ids, 0)
    user_turns = dict.fromkeys(conversation_ids, 0)
    rows = conn.execute(
        select(
            MESSAGES.c.conversation_id,
            func.max(MESSAGES.c.position) + 1,
            func.count().filter(MESSAGES.c.role == "user"),
        )
        .where(MESSAGES.c.conversation_id.in_(conversation_ids))
        .group_by(MESSAGES.c.conversation_id)
    )
    for conversation_id, position, users in rows:
        next_position[conversation_id] = position
        user_turns[conversation_id] = users
    return next_position, user_turns


def _raise_turn_counts(
    conn: Connection,
    messages: Sequence[NewMessage],
    battle_of: dict[str, str | None],
    user_turns: dict[str, int],
    now: datetime,
) -> None:
    """A battle's turn count is its conversations' largest number of user messages."""
    turns_of: dict[str, int] = {}
    for m in messages:
        battle_id = battle_of[m.conversation_id]
        if m.role == "user" and battle_id is not None:
            turns_of[battle_id] = max(turns_of.get(battle_id, 0), user_turns[m.conversation_id])
    turn_count = BATTLES.c.turn_count
    for battle_id, turns in sorted(turns_of.items()):
        conn.execute(
            update(BATTLES)
            .where(BATTLES.c.id == battle_id)
            .values(turn_count=case((turn_count < turns, turns), else_=turn_count), updated_at=now)
        )


def finish_message(
    db: Database,
    message_id: int,
    *,
    content: str | None = None,
    finish_reason: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    error: str | None = None,
    finished_at: datetime | None = None,
) -> MessageInfo:
    """Complete a message written while streaming (None leaves a field unchanged)."""
    with db.session() as session:
        row = session.get(Message, message_id, with_for_update=True)
        if row is None:
            raise NotFound(f"message {message_id!r} not found", param="message_id")
        if content is not None:
            row.content = content
        if finish_reason is not None:
            row.finish_reason = fit(finish_reason, Message.finish_reason)
        if prompt_tokens is not None:
            row.prompt_tokens = prompt_tokens
        if completion_tokens is not None:
            row.completion_tokens = completion_tokens
        if error is not None:
            row.error = error
        row.finished_at = finished_at or utcnow()
        session.flush()
        return message_info(row)
