"""Arena records: anonymous sessions, battles, their conversations and messages, votes and
image records. Callers get frozen dataclasses; rules about *when* to write live in
``arena.battles``, this module only stores and checks integrity.

Every write commits before the function returns, so a returned vote is durable.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from arena.errors import BadRequest, Conflict, NotFound
from arena.store.db import Database
from arena.store.models import (
    BATTLE_MODES,
    BATTLE_VOTE_TYPES,
    FEEDBACK_VOTE_TYPES,
    MESSAGE_ROLES,
    ArenaSession,
    Battle,
    Conversation,
    Message,
    MessageImage,
    StoredImage,
    Vote,
    check_fits,
    fit,
    utcnow,
)

TWO_MODEL_MODES = ("battle", "side_by_side")


def new_token() -> str:
    """A random opaque id (uuid4 hex): never derived from model names or times."""
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    created_at: datetime
    expires_at: datetime
    ip_hash: str | None
    user_agent_hash: str | None


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

    @property
    def anony(self) -> bool:
        return self.mode == "battle"


@dataclass(frozen=True, slots=True)
class VoteInfo:
    id: int
    battle_id: str
    message_id: int | None
    type: str
    created_at: datetime
    session_id: str | None
    ip_hash: str | None


@dataclass(frozen=True, slots=True)
class ImageInfo:
    content_hash: str
    mime_type: str
    width: int
    height: int
    byte_size: int
    storage_path: str
    created_at: datetime


def _session_info(row: ArenaSession) -> SessionInfo:
    return SessionInfo(row.id, row.created_at, row.expires_at, row.ip_hash, row.user_agent_hash)


def _message_info(row: Message) -> MessageInfo:
    return MessageInfo(
        id=row.id,
        conversation_id=row.conversation_id,
        position=row.position,
        role=row.role,
        content=row.content,
        model=row.model,
        params=dict(row.params) if row.params is not None else None,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        finish_reason=row.finish_reason,
        error=row.error,
        image_hashes=tuple(image.image_hash for image in row.images),
    )


def _conversation_info(row: Conversation) -> ConversationInfo:
    return ConversationInfo(
        id=row.id,
        battle_id=row.battle_id,
        side=row.side,
        session_id=row.session_id,
        model=row.model,
        params=dict(row.params) if row.params is not None else None,
        created_at=row.created_at,
        messages=tuple(_message_info(m) for m in row.messages),
    )


def _battle_info(row: Battle) -> BattleInfo:
    sides = {c.side: c.id for c in row.conversations}
    return BattleInfo(
        id=row.id,
        session_id=row.session_id,
        mode=row.mode,
        model_a=row.model_a,
        model_b=row.model_b,
        left_model=row.left_model,
        right_model=row.right_model,
        leaked=row.leaked,
        leak_reason=row.leak_reason,
        moderation_flagged=row.moderation_flagged,
        moderation_reason=row.moderation_reason,
        status=row.status,
        turn_count=row.turn_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
        conversation_a_id=sides.get("a"),
        conversation_b_id=sides.get("b"),
    )


def _vote_info(row: Vote) -> VoteInfo:
    return VoteInfo(
        row.id, row.battle_id, row.message_id, row.type, row.created_at, row.session_id, row.ip_hash
    )


def _image_info(row: StoredImage) -> ImageInfo:
    return ImageInfo(
        row.content_hash,
        row.mime_type,
        row.width,
        row.height,
        row.byte_size,
        row.storage_path,
        row.created_at,
    )


# ---------------------------------------------------------------------------- sessions


def create_session(
    db: Database,
    *,
    ttl_s: float,
    ip_hash: str | None = None,
    user_agent_hash: str | None = None,
    now: datetime | None = None,
) -> SessionInfo:
    """A new anonymous session with a random token id, valid for ``ttl_s`` seconds."""
    if ttl_s <= 0:
        raise BadRequest("session ttl must be positive")
    check_fits(ip_hash, ArenaSession.ip_hash, param="ip_hash")
    check_fits(user_agent_hash, ArenaSession.user_agent_hash, param="user_agent_hash")
    now = now or utcnow()
    row = ArenaSession(
        id=new_token(),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        ip_hash=ip_hash,
        user_agent_hash=user_agent_hash,
    )
    with db.session() as session:
        session.add(row)
        session.flush()
        return _session_info(row)


def get_session(
    db: Database, session_id: str, *, now: datetime | None = None
) -> SessionInfo | None:
    """The session if it exists and has not expired, else None."""
    if not session_id:
        return None
    with db.session(read_only=True) as session:
        row = session.get(ArenaSession, session_id)
        if row is None or row.expires_at <= (now or utcnow()):
            return None
        return _session_info(row)


def delete_expired_sessions(db: Database, *, now: datetime | None = None) -> int:
    """Drop expired sessions (their battles and votes stay; their session link is cleared)."""
    with db.session() as session:
        result = session.execute(
            delete(ArenaSession).where(ArenaSession.expires_at <= (now or utcnow()))
        )
        return result.rowcount


# ---------------------------------------------------------------------------- battles


def _load_battle(session: Session, battle_id: str, *, for_update: bool = False) -> Battle:
    query = select(Battle).where(Battle.id == battle_id).options(selectinload(Battle.conversations))
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).first()
    if row is None:
        raise NotFound(f"battle {battle_id!r} not found", param="battle_id")
    return row


def create_battle(
    db: Database,
    *,
    mode: str,
    model_a: str,
    model_b: str | None = None,
    session_id: str | None = None,
    left_model: str | None = None,
    right_model: str | None = None,
    params: dict[str, Any] | None = None,
    status: str = "open",
    now: datetime | None = None,
) -> BattleInfo:
    """A battle (or a direct chat: ``mode="direct"``, no ``model_b``) with an empty
    conversation per side. ``left_model``/``right_model`` record the order shown (default:
    ``model_a`` left); ``params`` are the generation parameters of both sides."""
    if mode not in BATTLE_MODES:
        raise BadRequest(f"mode must be one of {BATTLE_MODES}, got {mode!r}", param="mode")
    if not model_a:
        raise BadRequest("model_a must not be empty", param="model_a")
    if mode in TWO_MODEL_MODES and not model_b:
        raise BadRequest(f"mode {mode!r} needs model_b", param="model_b")
    if mode == "direct" and model_b:
        raise BadRequest("direct chat has a single model", param="model_b")
    left_model = left_model or model_a
    right_model = right_model or model_b
    for name, value in (("model_a", model_a), ("model_b", model_b)):
        check_fits(value, Battle.model_a, param=name)
    check_fits(status, Battle.status, param="status")
    if mode in TWO_MODEL_MODES and {left_model, right_model} != {model_a, model_b}:
        raise BadRequest("left_model/right_model must be model_a and model_b in some order")
    now = now or utcnow()
    battle = Battle(
        id=new_token(),
        session_id=session_id,
        mode=mode,
        model_a=model_a,
        model_b=model_b,
        left_model=left_model,
        right_model=right_model,
        leaked=False,
        moderation_flagged=False,
        status=status,
        turn_count=0,
        created_at=now,
        updated_at=now,
    )
    sides = [("a", model_a)] + ([("b", model_b)] if model_b else [])
    battle.conversations = [
        Conversation(
            id=new_token(),
            side=side,
            session_id=session_id,
            model=model,
            params=dict(params) if params else None,
            created_at=now,
        )
        for side, model in sides
    ]
    try:
        with db.session() as session:
            if session_id is not None and session.get(ArenaSession, session_id) is None:
                raise NotFound(f"session {session_id!r} not found", param="session_id")
            session.add(battle)
            session.flush()
            return _battle_info(battle)
    except IntegrityError as e:
        # The database's own text (PostgreSQL's names the failing row: model names, texts)
        # stays in the chained cause for logs; callers may show this message to users.
        raise BadRequest("the battle was rejected by the database") from e


def get_battle(db: Database, battle_id: str) -> BattleInfo:
    """The battle, or NotFound."""
    with db.session(read_only=True) as session:
        return _battle_info(_load_battle(session, battle_id))


def list_battles(
    db: Database,
    *,
    session_id: str | None = None,
    mode: str | None = None,
    limit: int | None = None,
) -> list[BattleInfo]:
    """Battles, newest first."""
    if limit is not None and limit < 0:  # SQLite would read -1 as "no limit", PostgreSQL fails
        raise BadRequest("limit must not be negative", param="limit")
    query = select(Battle).options(selectinload(Battle.conversations))
    if session_id is not None:
        query = query.where(Battle.session_id == session_id)
    if mode is not None:
        query = query.where(Battle.mode == mode)
    query = query.order_by(Battle.created_at.desc(), Battle.id).limit(limit)
    with db.session(read_only=True) as session:
        return [_battle_info(row) for row in session.scalars(query)]


def update_battle(
    db: Database,
    battle_id: str,
    *,
    status: str | None = None,
    leaked: bool | None = None,
    leak_reason: str | None = None,
    moderation_flagged: bool | None = None,
    moderation_reason: str | None = None,
    now: datetime | None = None,
) -> BattleInfo:
    """Change the given fields (None leaves a field as it is); NotFound if unknown."""
    check_fits(status, Battle.status, param="status")
    with db.session() as session:
        row = _load_battle(session, battle_id, for_update=True)
        if status is not None:
            row.status = status
        if leaked is not None:
            row.leaked = leaked
        if leak_reason is not None:
            row.leak_reason = leak_reason
        if moderation_flagged is not None:
            row.moderation_flagged = moderation_flagged
        if moderation_reason is not None:
            row.moderation_reason = moderation_reason
        row.updated_at = now or utcnow()
        session.flush()
        return _battle_info(row)


# ---------------------------------------------------------------------------- conversations


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
        return _conversation_info(_load_conversation(session, conversation_id))


def battle_conversations(db: Database, battle_id: str) -> tuple[ConversationInfo, ...]:
    """The battle's conversations, side ``a`` first; NotFound for an unknown battle."""
    with db.session(read_only=True) as session:
        _load_battle(session, battle_id)
        rows = session.scalars(
            select(Conversation)
            .where(Conversation.battle_id == battle_id)
            .order_by(Conversation.side)
            .options(selectinload(Conversation.messages).selectinload(Message.images))
        )
        return tuple(_conversation_info(row) for row in rows)


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
    if role not in MESSAGE_ROLES:
        raise BadRequest(f"role must be one of {MESSAGE_ROLES}, got {role!r}", param="role")
    check_fits(model, Message.model, param="model")
    now = now or utcnow()
    try:
        with db.session() as session:
            conversation = session.get(Conversation, conversation_id, with_for_update=True)
            if conversation is None:
                raise NotFound(f"conversation {conversation_id!r} not found")
            for content_hash in image_hashes:
                if session.get(StoredImage, content_hash) is None:
                    raise BadRequest(f"unknown image {content_hash!r}", param="image_hashes")
            position = session.scalar(
                select(func.coalesce(func.max(Message.position) + 1, 0)).where(
                    Message.conversation_id == conversation_id
                )
            )
            row = Message(
                conversation_id=conversation_id,
                position=position,
                role=role,
                content=content,
                model=model,
                params=dict(params) if params else None,
                created_at=now,
                started_at=started_at,
                finished_at=finished_at,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason=fit(finish_reason, Message.finish_reason),
                error=error,
                images=[MessageImage(position=i, image_hash=h) for i, h in enumerate(image_hashes)],
            )
            session.add(row)
            session.flush()
            if role == "user" and conversation.battle_id is not None:
                turns = session.scalar(
                    select(func.count())
                    .select_from(Message)
                    .where(Message.conversation_id == conversation_id, Message.role == "user")
                )
                battle = session.get(Battle, conversation.battle_id, with_for_update=True)
                assert battle is not None
                if turns > battle.turn_count:
                    battle.turn_count = turns
                battle.updated_at = now
            return _message_info(row)
    except IntegrityError as e:
        raise Conflict("the message was rejected by the database") from e


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
        return _message_info(row)


# ---------------------------------------------------------------------------- votes


def record_vote(
    db: Database,
    battle_id: str,
    vote: str,
    *,
    session_id: str | None = None,
    ip_hash: str | None = None,
    message_id: int | None = None,
    status: str | None = None,
    now: datetime | None = None,
) -> VoteInfo:
    """Store a vote and commit before returning.

    Battle votes (``a``, ``b``, ``tie``, ``bothbad``) are allowed once per battle in the
    ``battle`` and ``side_by_side`` modes; the database's unique index decides races, and the
    loser gets ``Conflict``. Feedback (``upvote``, ``downvote``, ``flag``) names one message
    of the battle and may repeat. ``status``, when given, is set on the battle in the same
    transaction. Unknown battle/message/session: ``NotFound``; other bad input: ``BadRequest``.
    """
    is_battle_vote = vote in BATTLE_VOTE_TYPES
    if not is_battle_vote and vote not in FEEDBACK_VOTE_TYPES:
        raise BadRequest(
            f"vote must be one of {BATTLE_VOTE_TYPES + FEEDBACK_VOTE_TYPES}, got {vote!r}",
            param="vote",
        )
    if is_battle_vote and message_id is not None:
        raise BadRequest("a battle vote names no message", param="message_id")
    if not is_battle_vote and message_id is None:
        raise BadRequest(f"{vote!r} feedback needs a message_id", param="message_id")
    check_fits(ip_hash, Vote.ip_hash, param="ip_hash")
    now = now or utcnow()
    try:
        with db.session() as session:
            battle = session.get(Battle, battle_id)
            if battle is None:
                raise NotFound(f"battle {battle_id!r} not found", param="battle_id")
            if is_battle_vote and battle.mode not in TWO_MODEL_MODES:
                raise BadRequest(f"a {battle.mode!r} chat takes feedback, not battle votes")
            if message_id is not None:
                owner = session.scalar(
                    select(Conversation.battle_id)
                    .join(Message, Message.conversation_id == Conversation.id)
                    .where(Message.id == message_id)
                )
                if owner != battle_id:
                    raise NotFound(f"message {message_id!r} not found in battle {battle_id!r}")
            if session_id is not None and session.get(ArenaSession, session_id) is None:
                raise NotFound(f"session {session_id!r} not found", param="session_id")
            row = Vote(
                battle_id=battle_id,
                message_id=message_id,
                type=vote,
                created_at=now,
                session_id=session_id,
                ip_hash=ip_hash,
            )
            session.add(row)
            if status is not None:
                battle.status = status
                battle.updated_at = now
            session.flush()
            info = _vote_info(row)
        return info
    except IntegrityError as e:
        if is_battle_vote:
            raise Conflict(f"battle {battle_id!r} already has a vote", param="battle_id") from e
        raise BadRequest("the vote was rejected by the database") from e


def get_battle_vote(db: Database, battle_id: str) -> VoteInfo | None:
    """The battle vote (not feedback) of a battle, if any."""
    with db.session(read_only=True) as session:
        row = session.scalars(
            select(Vote).where(Vote.battle_id == battle_id, Vote.message_id.is_(None))
        ).first()
        return None if row is None else _vote_info(row)


def list_votes(db: Database, battle_id: str) -> list[VoteInfo]:
    """All votes and feedback of a battle, oldest first."""
    with db.session(read_only=True) as session:
        rows = session.scalars(
            select(Vote).where(Vote.battle_id == battle_id).order_by(Vote.created_at, Vote.id)
        )
        return [_vote_info(row) for row in rows]


def count_votes(db: Database) -> int:
    with db.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(Vote)) or 0


# ---------------------------------------------------------------------------- images


def save_image_record(
    db: Database,
    *,
    content_hash: str,
    mime_type: str,
    width: int,
    height: int,
    byte_size: int,
    storage_path: str,
    now: datetime | None = None,
) -> ImageInfo:
    """Record an image stored under the data dir; the same content hash twice is a no-op
    that returns the first record."""
    if len(content_hash) != 64 or any(c not in "0123456789abcdef" for c in content_hash):
        raise BadRequest("content_hash must be a lowercase sha256 hex digest")
    check_fits(mime_type, StoredImage.mime_type, param="mime_type")
    check_fits(storage_path, StoredImage.storage_path, param="storage_path")
    values = {
        "content_hash": content_hash,
        "mime_type": mime_type,
        "width": int(width),
        "height": int(height),
        "byte_size": int(byte_size),
        "storage_path": storage_path,
        "created_at": now or utcnow(),
    }
    statement = db.conflict_insert(StoredImage).values(**values).on_conflict_do_nothing()
    with db.session() as session:
        session.execute(statement)
        row = session.get(StoredImage, content_hash)
        assert row is not None
        return _image_info(row)


def get_image(db: Database, content_hash: str) -> ImageInfo | None:
    with db.session(read_only=True) as session:
        row = session.get(StoredImage, content_hash)
        return None if row is None else _image_info(row)
