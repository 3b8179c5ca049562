"""Voted battles out of the database in the public clean-battle layout (JSON Lines/Parquet).

One row per battle vote (modes ``battle`` and ``side_by_side``; direct-chat feedback is not a
battle). Fields follow the public layout: ``model_a``, ``model_b``, ``winner`` (``model_a``,
``model_b``, ``tie``, ``tie (bothbad)``), ``judge``, ``turn``, ``anony``, ``language``,
``tstamp``, ``question_id``, ``conversation_a``/``conversation_b`` and ``conv_metadata``
(token sums, context sizes and markdown element counts of the answers), plus ``leaked`` and
``moderation_flagged`` so downstream filters can drop them. The pipeline's tags
(``arena pipeline run``) fill ``language``, ``is_code``, ``category_tag`` (the LLM taggers'
``criteria_v0.1``, ``if_v0.1``, ``math_v0.1``, ``creative_writing_v0.1``) and ``dedup_tag``;
untagged battles have ``language`` "unknown" and null tags. Votes the anomalous-voter screen
excludes (its session flagged, or its IP flagged and its session not cleared by the screen:
``arena.store.voter_flags.FlaggedIdentities``) are left out unless ``include_flagged``.
``judge`` is the voter's keyed IP hash, else the session's hash stored with the vote (it
outlives the purge of expired sessions) — never the session id, which is the visitor's
cookie.

Conversations hold, per turn, the user message and the *newest* answer (older answers were
regenerated). A battle where one of those answers failed (or never came) is no clean battle
and is left out: the web arena refuses such a vote, and a row stored before it did must not
reach the ratings either. Token counts are the upstream usage where it was recorded, else
``arena.pipeline.markdown_stats.approx_token_count``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from arena.atomic_files import write_atomic, write_jsonl
from arena.store.battle_tags import tags_for_battles
from arena.store.db import Database
from arena.store.models import Battle, Conversation, Message, Vote
from arena.store.voter_flags import FlaggedIdentities, load_flagged_identities

WINNERS = {"a": "model_a", "b": "model_b", "tie": "tie", "bothbad": "tie (bothbad)"}
FORMATS = ("jsonl", "parquet")
_BATCH = 1000
CATEGORY_TAGS = ("criteria_v0.1", "if_v0.1", "math_v0.1", "creative_writing_v0.1")
_CRITERIA = ["specificity", "domain_knowledge", "complexity", "problem_solving", "creativity"]
_CRITERIA += ["technical_accuracy", "real_world"]


def _markdown_stats() -> tuple[Callable[[str], dict], Callable[[str], int]]:
    from arena.pipeline.markdown_stats import approx_token_count, markdown_counts

    return markdown_counts, approx_token_count


def _turns(messages: list[Message]) -> list[tuple[Message, list[Message], Message | None]]:
    """Split a conversation into turns: (user message, system messages before it, answer)."""
    turns: list[tuple[Message, list[Message], Message | None]] = []
    pending_system: list[Message] = []
    for message in messages:
        if message.role == "system":
            pending_system.append(message)
        elif message.role == "user":
            turns.append((message, pending_system, None))
            pending_system = []
        elif turns:  # assistant: the newest one in a turn wins (regenerations)
            user, system, _ = turns[-1]
            turns[-1] = (user, system, message)
    return turns


def _answer_failed(battle: Battle) -> bool:
    """Did a shown answer of this battle (the newest of its turn, on any side) fail?"""
    for conversation in battle.conversations:
        for _user, _system, answer in _turns(list(conversation.messages)):
            if answer is None or answer.error is not None:
                return True
    return False


def _side(conversation: Conversation | None, tokens: Callable[[str], int]) -> dict[str, Any]:
    """Conversation list and token figures of one side."""
    messages: list[dict[str, str]] = []
    user_tokens = assistant_tokens = context_tokens = 0
    answers: list[str] = []
    running = 0  # tokens of everything said so far, for the last answer's context
    turns = _turns(list(conversation.messages)) if conversation is not None else []
    for user, system, answer in turns:
        for message in [*system, user]:
            messages.append({"role": message.role, "content": message.content})
            count = tokens(message.content)
            running += count
            if message.role == "user":
                user_tokens += count
        if answer is None:
            context_tokens = running
            continue
        context_tokens = answer.prompt_tokens if answer.prompt_tokens is not None else running
        answer_tokens = (
            answer.completion_tokens
            if answer.completion_tokens is not None
            else tokens(answer.content)
        )
        assistant_tokens += answer_tokens
        running += answer_tokens
        messages.append({"role": "assistant", "content": answer.content})
        answers.append(answer.content)
    return {
        "messages": messages,
        "turns": len(turns),
        "user_tokens": user_tokens,
        "assistant_tokens": assistant_tokens,
        "context_tokens": context_tokens,
        "answers": answers,
    }


def _sum_counts(texts: list[str], counter: Callable[[str], dict]) -> dict[str, dict[str, int]]:
    total = counter("")
    for text in texts:
        for group, values in counter(text).items():
            for key, value in values.items():
                total[group][key] = total[group].get(key, 0) + value
    return total


def _voter(vote: Vote) -> str:
    """The voter part of ``judge``: keyed IP hash, else the session's stored hash."""
    return vote.ip_hash or vote.session_hash or "anonymous"


def tag_fields(tags: dict[str, Any]) -> dict[str, Any]:
    """The clean-battle fields the pipeline's tags fill (public layout names)."""
    language = tags.get("language")
    category = {name: tags[name] for name in CATEGORY_TAGS if isinstance(tags.get(name), dict)}
    is_code = tags.get("is_code")
    dedup = tags.get("dedup")
    return {
        "language": language if isinstance(language, str) and language else "unknown",
        "is_code": is_code if isinstance(is_code, bool) else None,
        "category_tag": category or None,
        "dedup_tag": dedup if isinstance(dedup, dict) else None,
    }


def _row(battle: Battle, vote: Vote, tags: dict[str, Any] | None = None) -> dict[str, Any]:
    markdown_counts, approx_tokens = _markdown_stats()
    by_side = {c.side: c for c in battle.conversations}
    a = _side(by_side.get("a"), approx_tokens)
    b = _side(by_side.get("b"), approx_tokens)
    counts_a = _sum_counts(a["answers"], markdown_counts)
    counts_b = _sum_counts(b["answers"], markdown_counts)
    turns = min(a["turns"], b["turns"])
    judge = _voter(vote)
    tagged = tag_fields(tags or {})
    return {
        "question_id": battle.id,
        "model_a": battle.model_a,
        "model_b": battle.model_b,
        "winner": WINNERS[vote.type],
        "judge": f"arena_user_{judge}",
        "turn": turns,
        "anony": battle.mode == "battle",
        "language": tagged["language"],
        "tstamp": vote.created_at.timestamp(),
        "conversation_a": a["messages"],
        "conversation_b": b["messages"],
        "conv_metadata": {
            "sum_user_tokens": a["user_tokens"],
            "sum_assistant_a_tokens": a["assistant_tokens"],
            "sum_assistant_b_tokens": b["assistant_tokens"],
            "context_a_tokens": a["context_tokens"],
            "context_b_tokens": b["context_tokens"],
            "turns": turns,
            "header_count_a": counts_a["header_count"],
            "list_count_a": counts_a["list_count"],
            "bold_count_a": counts_a["bold_count"],
            "header_count_b": counts_b["header_count"],
            "list_count_b": counts_b["list_count"],
            "bold_count_b": counts_b["bold_count"],
        },
        "leaked": battle.leaked,
        "moderation_flagged": battle.moderation_flagged,
        "is_code": tagged["is_code"],
        "category_tag": tagged["category_tag"],
        "dedup_tag": tagged["dedup_tag"],
    }


def flagged_voters(db: Database) -> FlaggedIdentities:
    """The flags (and cleared sessions) that decide which votes the export leaves out."""
    return load_flagged_identities(db)


def iter_clean_battles(
    db: Database,
    *,
    anony_only: bool = False,
    include_leaked: bool = True,
    include_flagged: bool = False,
    counts: dict[str, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """Clean-battle rows in vote order, read in batches so memory stays flat. Votes the
    flags exclude (``FlaggedIdentities.excludes_vote``) are skipped unless ``include_flagged``;
    ``counts["flagged_excluded"]`` (when a dict is given) says how many (each vote once)."""
    flagged = FlaggedIdentities() if include_flagged else flagged_voters(db)
    if counts is not None:
        counts.setdefault("flagged_excluded", 0)
    last_id = 0
    while True:
        query = (
            select(Vote, Battle)
            .join(Battle, Battle.id == Vote.battle_id)
            .where(Vote.message_id.is_(None), Vote.id > last_id)
            .order_by(Vote.id)
            .limit(_BATCH)
            .options(selectinload(Battle.conversations).selectinload(Conversation.messages))
        )
        if anony_only:
            query = query.where(Battle.mode == "battle")
        else:
            query = query.where(Battle.mode.in_(("battle", "side_by_side")))
        if not include_leaked:
            query = query.where(Battle.leaked.is_(False))
        with db.session(read_only=True) as session:
            pairs = session.execute(query).all()
            kept = [
                (v, b) for v, b in pairs if not flagged.excludes_vote(v.ip_hash, v.session_hash)
            ]
            if counts is not None:
                counts["flagged_excluded"] += len(pairs) - len(kept)
            tags = tags_for_battles(session, [b.id for _, b in kept])
            rows = [
                _row(battle, vote, tags.get(battle.id))
                for vote, battle in kept
                if not _answer_failed(battle)
            ]
        yield from rows
        if len(pairs) < _BATCH:
            return
        last_id = pairs[-1][0].id


def clean_battles(
    db: Database,
    *,
    anony_only: bool = False,
    include_leaked: bool = True,
    include_flagged: bool = False,
    counts: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """All voted battles as clean-battle dicts. Leaked battles are included with
    ``leaked=True`` so the leaderboard's own filter decides (it drops them by default);
    flagged voters' votes are left out unless ``include_flagged``."""
    return list(
        iter_clean_battles(
            db,
            anony_only=anony_only,
            include_leaked=include_leaked,
            include_flagged=include_flagged,
            counts=counts,
        )
    )


def polars_schema() -> dict[str, Any]:
    """Column types of the Parquet export (also used for an empty export)."""
    import polars as pl

    message = pl.Struct({"role": pl.String, "content": pl.String})
    headers = pl.Struct({f"h{i}": pl.Int64 for i in range(1, 7)})
    criteria = pl.Struct({name: pl.Boolean for name in (*_CRITERIA, "hard")})
    category = pl.Struct(
        {
            "criteria_v0.1": criteria,
            "if_v0.1": pl.Struct({"if": pl.Boolean, "score": pl.Int64}),
            "math_v0.1": pl.Struct({"math": pl.Boolean}),
            "creative_writing_v0.1": pl.Struct({"creative_writing": pl.Boolean}),
        }
    )
    lists = pl.Struct({"ordered": pl.Int64, "unordered": pl.Int64})
    bold = pl.Struct({"**": pl.Int64, "__": pl.Int64})
    metadata = pl.Struct(
        {
            "sum_user_tokens": pl.Int64,
            "sum_assistant_a_tokens": pl.Int64,
            "sum_assistant_b_tokens": pl.Int64,
            "context_a_tokens": pl.Int64,
            "context_b_tokens": pl.Int64,
            "turns": pl.Int64,
            "header_count_a": headers,
            "list_count_a": lists,
            "bold_count_a": bold,
            "header_count_b": headers,
            "list_count_b": lists,
            "bold_count_b": bold,
        }
    )
    return {
        "question_id": pl.String,
        "model_a": pl.String,
        "model_b": pl.String,
        "winner": pl.String,
        "judge": pl.String,
        "turn": pl.Int64,
        "anony": pl.Boolean,
        "language": pl.String,
        "tstamp": pl.Float64,
        "conversation_a": pl.List(message),
        "conversation_b": pl.List(message),
        "conv_metadata": metadata,
        "leaked": pl.Boolean,
        "moderation_flagged": pl.Boolean,
        "is_code": pl.Boolean,
        "category_tag": category,
        "dedup_tag": pl.Struct({"high_freq": pl.Boolean, "sampled": pl.Boolean}),
    }


def _write_parquet(rows: Iterator[dict[str, Any]], path: Path) -> int:
    import polars as pl
    import pyarrow.parquet as pq

    schema = polars_schema()
    count = 0
    writer: pq.ParquetWriter | None = None
    try:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) == 10 * _BATCH:
                table = pl.DataFrame(batch, schema=schema).to_arrow()
                writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
                writer.write_table(table)
                count += len(batch)
                batch = []
        if batch or writer is None:
            table = pl.DataFrame(batch, schema=schema).to_arrow()
            writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
            count += len(batch)
    finally:
        if writer is not None:
            writer.close()
    return count


def export_battles(
    db: Database,
    out: Path,
    *,
    fmt: str = "jsonl",
    anony_only: bool = False,
    include_leaked: bool = False,
    include_flagged: bool = False,
) -> int:
    """Write voted battles to ``out`` (atomically: a failed export leaves no partial file).
    Leaked battles and flagged voters' votes are left out unless ``include_leaked`` /
    ``include_flagged``. Returns the number of rows."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = iter_clean_battles(
        db, anony_only=anony_only, include_leaked=include_leaked, include_flagged=include_flagged
    )
    writer = write_jsonl if fmt == "jsonl" else _write_parquet
    return write_atomic(out, lambda tmp: writer(rows, tmp))
