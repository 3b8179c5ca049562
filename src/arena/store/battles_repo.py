"""Arena records: anonymous sessions, battles, their conversations and messages, votes and
image records. Callers get frozen dataclasses; rules about *when* to write live in
``arena.battles``, this module only stores and checks integrity.

Every write commits before the function returns, so a returned vote is durable.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    RowMapping,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
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

# The hot paths of a battle (create, append a message, rebuild, vote) use Core statements on
# these tables: the ORM's unit of work cost several times more CPU per call, and in the web
# app that CPU is taken from the event loop (one GIL).
_BATTLES = Battle.__table__
_CONVERSATIONS = Conversation.__table__
_MESSAGES = Message.__table__
_MESSAGE_IMAGES = MessageImage.__table__
_VOTES = Vote.__table__
_SESSIONS = ArenaSession.__table__
_IMAGES = StoredImage.__table__


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
    vision: bool = False

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
    columns = {c.name: getattr(row, c.name) for c in _MESSAGES.c}
    info = _message_info_from(columns, prefix="")
    return replace(info, image_hashes=tuple(image.image_hash for image in row.images))


def _conversation_info(row: Conversation) -> ConversationInfo:
    columns = {c.name: getattr(row, c.name) for c in _CONVERSATIONS.c}
    return _conversation_info_from(columns, tuple(_message_info(m) for m in row.messages))


def _conversation_info_from(
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


def _battle_info(row: Battle) -> BattleInfo:
    columns = {c.name: getattr(row, c.name) for c in _BATTLES.c}
    return _battle_info_from(columns, {c.side: c.id for c in row.conversations})


def _battle_info_from(
    row: Mapping[str, Any], conversation_ids: dict[str | None, str]
) -> BattleInfo:
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
    vision: bool = False,
) -> BattleInfo:
    """A battle (or a direct chat: ``mode="direct"``, no ``model_b``) with an empty
    conversation per side. ``left_model``/``right_model`` record the order shown (default:
    ``model_a`` left); ``params`` are the generation parameters of both sides; ``vision``
    declares a chat with images."""
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
    battle = {
        "id": new_token(),
        "session_id": session_id,
        "mode": mode,
        "model_a": model_a,
        "model_b": model_b,
        "left_model": left_model,
        "right_model": right_model,
        "leaked": False,
        "leak_reason": None,
        "moderation_flagged": False,
        "moderation_reason": None,
        "status": status,
        "turn_count": 0,
        "vision": vision,
        "created_at": now,
        "updated_at": now,
    }
    sides = [("a", model_a)] + ([("b", model_b)] if model_b else [])
    conversations = [
        {
            "id": new_token(),
            "battle_id": battle["id"],
            "side": side,
            "session_id": session_id,
            "model": model,
            "params": dict(params) if params else None,
            "created_at": now,
        }
        for side, model in sides
    ]
    try:
        with db.session() as session:
            conn = session.connection()
            if session_id is not None and not _session_exists(conn, session_id):
                raise NotFound(f"session {session_id!r} not found", param="session_id")
            conn.execute(insert(_BATTLES), battle)
            conn.execute(insert(_CONVERSATIONS), conversations)
            return _battle_info_from(battle, {c["side"]: c["id"] for c in conversations})
    except IntegrityError as e:
        # The database's own text (PostgreSQL's names the failing row: model names, texts)
        # stays in the chained cause for logs; callers may show this message to users.
        raise BadRequest("the battle was rejected by the database") from e


def _session_exists(conn: Connection, session_id: str) -> bool:
    found = conn.execute(select(_SESSIONS.c.id).where(_SESSIONS.c.id == session_id)).first()
    return found is not None


def _battle_row(conn: Connection, battle_id: str) -> RowMapping:
    row = conn.execute(select(_BATTLES).where(_BATTLES.c.id == battle_id)).mappings().first()
    if row is None:
        raise NotFound(f"battle {battle_id!r} not found", param="battle_id")
    return row


# A battle with its conversations, messages and images, in one query: one row per (battle,
# conversation, message, image); missing parts are NULL columns. Built once: a statement
# reused keeps its cache key, so executing it skips SQLAlchemy's statement traversal.
_BATTLE_TREE = (
    select(
        *(c.label(f"b_{c.name}") for c in _BATTLES.c),
        *(c.label(f"c_{c.name}") for c in _CONVERSATIONS.c),
        *(c.label(f"m_{c.name}") for c in _MESSAGES.c),
        _MESSAGE_IMAGES.c.image_hash.label("i_image_hash"),
    )
    .select_from(
        _BATTLES.outerjoin(_CONVERSATIONS, _CONVERSATIONS.c.battle_id == _BATTLES.c.id)
        .outerjoin(_MESSAGES, _MESSAGES.c.conversation_id == _CONVERSATIONS.c.id)
        .outerjoin(_MESSAGE_IMAGES, _MESSAGE_IMAGES.c.message_id == _MESSAGES.c.id)
    )
    .where(_BATTLES.c.id == bindparam("battle_id"))
    .order_by(_CONVERSATIONS.c.side, _MESSAGES.c.position, _MESSAGE_IMAGES.c.position)
)


def _battle_tree(
    conn: Connection, battle_id: str
) -> tuple[dict[str, Any], tuple[ConversationInfo, ...]]:
    """The battle row (as a dict) and its conversations with their messages, side ``a``
    first; NotFound for an unknown battle."""
    rows = conn.execute(_BATTLE_TREE, {"battle_id": battle_id}).mappings().all()
    if not rows:
        raise NotFound(f"battle {battle_id!r} not found", param="battle_id")
    battle = {c.name: rows[0][f"b_{c.name}"] for c in _BATTLES.c}
    conversations: dict[str, tuple[RowMapping, list[MessageInfo]]] = {}
    images: dict[int, list[str]] = {}
    for row in rows:
        conversation_id = row["c_id"]
        if conversation_id is None:
            continue
        if conversation_id not in conversations:
            conversations[conversation_id] = (row, [])
        message_id = row["m_id"]
        if message_id is None:
            continue
        messages = conversations[conversation_id][1]
        if not messages or messages[-1].id != message_id:
            images[message_id] = []
            messages.append(_message_info_from(row))
        if row["i_image_hash"] is not None:
            images[message_id].append(row["i_image_hash"])
    infos = tuple(
        _conversation_info_from(
            c,
            tuple(
                replace(m, image_hashes=tuple(images[m.id])) if images[m.id] else m
                for m in messages
            ),
            prefix="c_",
        )
        for c, messages in conversations.values()
    )
    return battle, infos


def _message_info_from(row: Mapping[str, Any], *, prefix: str = "m_") -> MessageInfo:
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


def _battle_vote(conn: Connection, battle_id: str) -> VoteInfo | None:
    row = (
        conn.execute(
            select(_VOTES)
            .where(_VOTES.c.battle_id == battle_id, _VOTES.c.message_id.is_(None))
            .limit(1)
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return VoteInfo(
        row["id"],
        row["battle_id"],
        row["message_id"],
        row["type"],
        row["created_at"],
        row["session_id"],
        row["ip_hash"],
    )


@dataclass(frozen=True, slots=True)
class BattleSnapshot:
    """Everything stored about one battle, read in one transaction."""

    battle: BattleInfo
    conversations: tuple[ConversationInfo, ...]  # side ``a`` first
    vote: VoteInfo | None  # the battle vote (not feedback), if any


def battle_snapshot(db: Database, battle_id: str) -> BattleSnapshot:
    """The battle, its conversations and messages, and its vote: one query, and a second
    for the vote when the battle is marked voted. NotFound for an unknown battle."""
    with db.session(read_only=True) as session:
        conn = session.connection()
        row, conversations = _battle_tree(conn, battle_id)
        vote = _battle_vote(conn, battle_id) if row["status"] == "voted" else None
        ids = {c.side: c.id for c in conversations}
        return BattleSnapshot(_battle_info_from(row, ids), conversations, vote)


def get_battle(db: Database, battle_id: str) -> BattleInfo:
    """The battle, or NotFound."""
    with db.session(read_only=True) as session:
        conn = session.connection()
        row = _battle_row(conn, battle_id)
        sides = conn.execute(
            select(_CONVERSATIONS.c.side, _CONVERSATIONS.c.id).where(
                _CONVERSATIONS.c.battle_id == battle_id
            )
        ).all()
        return _battle_info_from(row, {side: cid for side, cid in sides})


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
        return _battle_tree(session.connection(), battle_id)[1]


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
                    select(_CONVERSATIONS.c.id, _CONVERSATIONS.c.battle_id)
                    .where(_CONVERSATIONS.c.id.in_(conversation_ids))
                    .order_by(_CONVERSATIONS.c.id)
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
                insert(_MESSAGES).returning(_MESSAGES.c.id, sort_by_parameter_order=True), rows
            ).all()
            images = [
                {"message_id": message_id, "position": i, "image_hash": h}
                for message_id, m in zip(ids, messages, strict=True)
                for i, h in enumerate(m.image_hashes)
            ]
            if images:
                conn.execute(insert(_MESSAGE_IMAGES), images)
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
        conn.scalars(select(_IMAGES.c.content_hash).where(_IMAGES.c.content_hash.in_(hashes)))
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
            _MESSAGES.c.conversation_id,
            func.max(_MESSAGES.c.position) + 1,
            func.count().filter(_MESSAGES.c.role == "user"),
        )
        .where(_MESSAGES.c.conversation_id.in_(conversation_ids))
        .group_by(_MESSAGES.c.conversation_id)
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
    turn_count = _BATTLES.c.turn_count
    for battle_id, turns in sorted(turns_of.items()):
        conn.execute(
            update(_BATTLES)
            .where(_BATTLES.c.id == battle_id)
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
        return _message_info(row)


# ---------------------------------------------------------------------------- votes


# What a vote must find, in one round trip: the battle's mode, whether the voter's session
# exists, and which battle the rated message (feedback) belongs to.
_VOTE_CHECKS = select(
    _BATTLES.c.mode,
    exists().where(_SESSIONS.c.id == bindparam("session_id")),
    select(_CONVERSATIONS.c.battle_id)
    .join(_MESSAGES, _MESSAGES.c.conversation_id == _CONVERSATIONS.c.id)
    .where(_MESSAGES.c.id == bindparam("message_id", type_=Integer))
    .scalar_subquery(),
).where(_BATTLES.c.id == bindparam("battle_id"))


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
            conn = session.connection()
            found = conn.execute(
                _VOTE_CHECKS,
                {"battle_id": battle_id, "session_id": session_id, "message_id": message_id},
            ).first()
            if found is None:
                raise NotFound(f"battle {battle_id!r} not found", param="battle_id")
            mode, session_known, message_battle = found
            if is_battle_vote and mode not in TWO_MODEL_MODES:
                raise BadRequest(f"a {mode!r} chat takes feedback, not battle votes")
            if message_id is not None and message_battle != battle_id:
                raise NotFound(f"message {message_id!r} not found in battle {battle_id!r}")
            if session_id is not None and not session_known:
                raise NotFound(f"session {session_id!r} not found", param="session_id")
            result = conn.execute(
                insert(_VOTES),
                {
                    "battle_id": battle_id,
                    "message_id": message_id,
                    "type": vote,
                    "created_at": now,
                    "session_id": session_id,
                    "ip_hash": ip_hash,
                },
            )
            vote_id = result.inserted_primary_key[0]
            if status is not None:
                conn.execute(
                    update(_BATTLES)
                    .where(_BATTLES.c.id == battle_id)
                    .values(status=status, updated_at=now)
                )
        return VoteInfo(vote_id, battle_id, message_id, vote, now, session_id, ip_hash)
    except IntegrityError as e:
        if is_battle_vote:
            raise Conflict(f"battle {battle_id!r} already has a vote", param="battle_id") from e
        raise BadRequest("the vote was rejected by the database") from e


def get_battle_vote(db: Database, battle_id: str) -> VoteInfo | None:
    """The battle vote (not feedback) of a battle, if any."""
    with db.session(read_only=True) as session:
        return _battle_vote(session.connection(), battle_id)


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
