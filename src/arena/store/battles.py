"""Battles and their state: create a battle (or a direct chat) with a conversation per
side, read it back whole in one query (``battle_snapshot``), list battles and change their
status, leak and moderation flags. Rules about *when* to write live in ``arena.battles``;
this module only stores and checks integrity, and every write commits before it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from arena.errors import BadRequest, NotFound
from arena.store.db import Database
from arena.store.models import BATTLE_MODES, Battle, check_fits, utcnow
from arena.store.records import (
    BATTLES,
    CONVERSATIONS,
    MESSAGE_IMAGES,
    MESSAGES,
    TWO_MODEL_MODES,
    BattleInfo,
    ConversationInfo,
    MessageInfo,
    battle_info,
    battle_info_from,
    conversation_info_from,
    message_info_from,
    new_token,
)
from arena.store.release_opt_outs import session_release_state
from arena.store.votes import VoteInfo, read_battle_vote


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
        "release_excluded": False,
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
            if session_id is not None:
                exists, opted_out = session_release_state(conn, session_id)
                if not exists:
                    raise NotFound(f"session {session_id!r} not found", param="session_id")
                battle["release_excluded"] = opted_out
            conn.execute(insert(BATTLES), battle)
            conn.execute(insert(CONVERSATIONS), conversations)
            return battle_info_from(battle, {c["side"]: c["id"] for c in conversations})
    except IntegrityError as e:
        # The database's own text (PostgreSQL's names the failing row: model names, texts)
        # stays in the chained cause for logs; callers may show this message to users.
        raise BadRequest("the battle was rejected by the database") from e


def _battle_row(conn: Connection, battle_id: str) -> RowMapping:
    row = conn.execute(select(BATTLES).where(BATTLES.c.id == battle_id)).mappings().first()
    if row is None:
        raise NotFound(f"battle {battle_id!r} not found", param="battle_id")
    return row


# A battle with its conversations, messages and images, in one query: one row per (battle,
# conversation, message, image); missing parts are NULL columns. Built once: a statement
# reused keeps its cache key, so executing it skips SQLAlchemy's statement traversal.
_BATTLE_TREE = (
    select(
        *(c.label(f"b_{c.name}") for c in BATTLES.c),
        *(c.label(f"c_{c.name}") for c in CONVERSATIONS.c),
        *(c.label(f"m_{c.name}") for c in MESSAGES.c),
        MESSAGE_IMAGES.c.image_hash.label("i_image_hash"),
    )
    .select_from(
        BATTLES.outerjoin(CONVERSATIONS, CONVERSATIONS.c.battle_id == BATTLES.c.id)
        .outerjoin(MESSAGES, MESSAGES.c.conversation_id == CONVERSATIONS.c.id)
        .outerjoin(MESSAGE_IMAGES, MESSAGE_IMAGES.c.message_id == MESSAGES.c.id)
    )
    .where(BATTLES.c.id == bindparam("battle_id"))
    .order_by(CONVERSATIONS.c.side, MESSAGES.c.position, MESSAGE_IMAGES.c.position)
)


def battle_tree(
    conn: Connection, battle_id: str
) -> tuple[dict[str, Any], tuple[ConversationInfo, ...]]:
    """The battle row (as a dict) and its conversations with their messages, side ``a``
    first; NotFound for an unknown battle."""
    rows = conn.execute(_BATTLE_TREE, {"battle_id": battle_id}).mappings().all()
    if not rows:
        raise NotFound(f"battle {battle_id!r} not found", param="battle_id")
    battle = {c.name: rows[0][f"b_{c.name}"] for c in BATTLES.c}
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
            messages.append(message_info_from(row))
        if row["i_image_hash"] is not None:
            images[message_id].append(row["i_image_hash"])
    infos = tuple(
        conversation_info_from(
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
        row, conversations = battle_tree(conn, battle_id)
        vote = read_battle_vote(conn, battle_id) if row["status"] == "voted" else None
        ids = {c.side: c.id for c in conversations}
        return BattleSnapshot(battle_info_from(row, ids), conversations, vote)


def get_battle(db: Database, battle_id: str) -> BattleInfo:
    """The battle, or NotFound."""
    with db.session(read_only=True) as session:
        conn = session.connection()
        row = _battle_row(conn, battle_id)
        sides = conn.execute(
            select(CONVERSATIONS.c.side, CONVERSATIONS.c.id).where(
                CONVERSATIONS.c.battle_id == battle_id
            )
        ).all()
        return battle_info_from(row, {side: cid for side, cid in sides})


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
        return [battle_info(row) for row in session.scalars(query)]


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
        return battle_info(row)
