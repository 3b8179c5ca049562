"""Queries of the pipeline's tags (``battle_tags``): which battles still need a tagger, their
prompts, writing tags, and reading them back for exports and the leaderboard.

A battle needs a tagger when it has at least one user prompt and no tag of the tagger's
first tag name at the tagger's current version, or only one whose status is ``error``
(a failed labeller call is retried by the next run; an unparsable answer is kept).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from arena.pipeline.tags import PromptRecord, Tag
from arena.store.db import Database
from arena.store.models import Battle, Conversation, Message, MessageImage, utcnow
from arena.store.pipeline_tables import BattleTag

TaggerKey = tuple[str, str]  # (first tag name, version)
_IN_CHUNK = 500  # ids per IN (...) list: well inside every backend's parameter limit


def _has_user_prompt() -> Any:
    return exists().where(
        Conversation.battle_id == Battle.id,
        Message.conversation_id == Conversation.id,
        Message.role == "user",
    )


def _has_current(key: TaggerKey) -> Any:
    name, version = key
    return exists().where(
        BattleTag.battle_id == Battle.id,
        BattleTag.name == name,
        BattleTag.version == version,
        BattleTag.status != "error",
    )


def battles_needing(
    db: Database, keys: Sequence[TaggerKey], *, after: str | None = None, limit: int = 500
) -> list[str]:
    """Ids (ascending, after ``after``) of battles with prompts lacking any of ``keys``."""
    if not keys:
        return []
    query = (
        select(Battle.id)
        .where(_has_user_prompt(), or_(*[~_has_current(k) for k in keys]))
        .order_by(Battle.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Battle.id > after)
    with db.session(read_only=True) as session:
        return list(session.scalars(query))


def count_needing(db: Database, key: TaggerKey) -> int:
    """How many battles with prompts lack this tagger's current tag."""
    query = select(func.count()).select_from(Battle).where(_has_user_prompt(), ~_has_current(key))
    with db.session(read_only=True) as session:
        return session.scalar(query) or 0


def count_with_prompts(db: Database) -> int:
    with db.session(read_only=True) as session:
        return session.scalar(select(func.count()).select_from(Battle).where(_has_user_prompt()))


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _IN_CHUNK):
        yield ids[start : start + _IN_CHUNK]


def current_keys(db: Database, battle_ids: Sequence[str], keys: Sequence[TaggerKey]) -> set:
    """``(battle_id, name)`` pairs among ``battle_ids`` already tagged at the current version."""
    wanted = dict(keys)
    found: set[tuple[str, str]] = set()
    with db.session(read_only=True) as session:
        for chunk in _chunks(battle_ids):
            rows = session.execute(
                select(BattleTag.battle_id, BattleTag.name, BattleTag.version).where(
                    BattleTag.battle_id.in_(chunk),
                    BattleTag.name.in_(list(wanted)),
                    BattleTag.status != "error",
                )
            )
            found.update((b, n) for b, n, v in rows if wanted.get(n) == v)
    return found


def prompt_records(db: Database, battle_ids: Sequence[str]) -> list[PromptRecord]:
    """The user prompts of each battle, in turn order (side ``a``: both sides get the same
    prompts; a direct chat has one side). Battles without prompts are left out."""
    prompts: dict[str, dict[str | None, list[tuple[int, int, str]]]] = defaultdict(dict)
    images: set[int] = set()
    with db.session(read_only=True) as session:
        for chunk in _chunks(battle_ids):
            rows = session.execute(
                select(
                    Conversation.battle_id,
                    Conversation.side,
                    Message.position,
                    Message.id,
                    Message.content,
                )
                .join(Message, Message.conversation_id == Conversation.id)
                .where(Conversation.battle_id.in_(chunk), Message.role == "user")
            )
            message_ids = []
            for battle_id, side, position, message_id, content in rows:
                prompts[battle_id].setdefault(side, []).append((position, message_id, content))
                message_ids.append(message_id)
            for id_chunk in range(0, len(message_ids), _IN_CHUNK):
                images.update(
                    session.scalars(
                        select(MessageImage.message_id)
                        .where(
                            MessageImage.message_id.in_(
                                message_ids[id_chunk : id_chunk + _IN_CHUNK]
                            )
                        )
                        .distinct()
                    )
                )
    records = []
    for battle_id in battle_ids:
        sides = prompts.get(battle_id)
        if not sides:
            continue
        side = "a" if "a" in sides else sorted(sides, key=lambda s: s or "")[0]
        turns = sorted(sides[side])
        records.append(
            PromptRecord(
                battle_id=battle_id,
                prompts=tuple(content for _, _, content in turns),
                has_images=any(message_id in images for _, message_id, _ in turns),
            )
        )
    return records


def tag_rows(
    battle_id: str, tags: Iterable[Tag], *, tagger: str, version: str, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Rows for ``upsert_tags`` from one battle's tags."""
    at = now or utcnow()
    return [
        {
            "battle_id": battle_id,
            "name": tag.name,
            "value": tag.value,
            "status": tag.status,
            "tagger": tagger,
            "version": version,
            "detail": tag.detail,
            "computed_at": at,
        }
        for tag in tags
    ]


def upsert_tags(
    db: Database, rows: Sequence[dict[str, Any]], session: Session | None = None
) -> None:
    """Insert or replace tags (one per battle and name), in one transaction."""
    if not rows:
        return
    if session is None:
        with db.session() as own:
            upsert_tags(db, rows, own)
        return
    # One statement for every row (executemany): SQLAlchemy caches its compiled form and
    # batches the rows itself, where a multi-row VALUES would be rebuilt for every batch.
    statement = db.conflict_insert(BattleTag)
    excluded = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=["battle_id", "name"],
        set_={
            column: getattr(excluded, column)
            for column in ("value", "status", "tagger", "version", "detail", "computed_at")
        },
    )
    session.execute(statement, [dict(row) for row in rows])


def iter_tag_values(db: Database, name: str, *, batch: int = 50_000) -> Iterator[tuple]:
    """``(battle_id, value, version, status)`` of every tag called ``name``, by battle id."""
    last: str | None = None
    while True:
        query = (
            select(BattleTag.battle_id, BattleTag.value, BattleTag.version, BattleTag.status)
            .where(BattleTag.name == name)
            .order_by(BattleTag.battle_id)
            .limit(batch)
        )
        if last is not None:
            query = query.where(BattleTag.battle_id > last)
        with db.session(read_only=True) as session:
            rows = [tuple(r) for r in session.execute(query)]
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1][0]


def tags_for_battles(db_or_session: Database | Session, battle_ids: Sequence[str]) -> dict:
    """``{battle_id: {name: value}}`` of the ``ok`` tags of these battles."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)

    def read(session: Session) -> None:
        for chunk in _chunks(list(battle_ids)):
            rows = session.execute(
                select(BattleTag.battle_id, BattleTag.name, BattleTag.value).where(
                    BattleTag.battle_id.in_(chunk), BattleTag.status == "ok"
                )
            )
            for battle_id, name, value in rows:
                out[battle_id][name] = value

    if isinstance(db_or_session, Database):
        with db_or_session.session(read_only=True) as session:
            read(session)
    else:
        read(db_or_session)
    return dict(out)


def tag_stamp(db: Database) -> datetime | None:
    """When the newest tag was written (None without tags): a leaderboard computed before it
    may show stale categories."""
    with db.session(read_only=True) as session:
        return session.scalar(select(func.max(BattleTag.computed_at)))


def tag_counts(db: Database) -> dict[tuple[str, str], int]:
    """``(name, version) → battles`` with an ``ok`` tag: what a run has covered so far."""
    with db.session(read_only=True) as session:
        rows = session.execute(
            select(BattleTag.name, BattleTag.version, func.count())
            .where(BattleTag.status == "ok")
            .group_by(BattleTag.name, BattleTag.version)
        )
        return {(name, version): count for name, version, count in rows}
