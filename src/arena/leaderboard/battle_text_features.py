"""Features derived from conversation text, for battles whose metadata lacks them.

The public dump carries ``conv_metadata`` (token and markdown counts) and category tags for
every battle; other sources (Arena's own database, partial dumps) may carry only the
conversations. There the style features, the prompt length and the code flag are computed
from the text with ``arena.pipeline.markdown_stats``, one battle at a time, so only the rows
that need it pay for Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from arena.leaderboard.battle_columns import STYLE_COLUMNS, STYLE_FEATURES

if TYPE_CHECKING:
    import polars as pl

TEXT_COLUMNS = ("_user_text", "_answer_a", "_answer_b")


def message_text(content: Any) -> str:
    """Plain text of a message: a string, or the text parts of a multimodal list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        # Some answer dumps store {"answer": "..."}.
        return "\n".join(message_text(v) for v in content.values())
    if isinstance(content, list | tuple):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


def prepare_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Make a dict safe for one Polars schema: conversations as role/text pairs, ids as text."""
    out = dict(row)
    for key in ("conversation_a", "conversation_b"):
        conv = out.get(key)
        if conv is not None:
            out[key] = [
                {"role": str(m.get("role", "")), "content": message_text(m.get("content"))}
                for m in conv
                if isinstance(m, Mapping)
            ]
    if out.get("question_id") is not None:
        out["question_id"] = str(out["question_id"])
    if isinstance(out.get("tstamp"), int):
        out["tstamp"] = float(out["tstamp"])
    return out


def turns_text(schema: Mapping[str, Any], conv: str, role: str) -> pl.Expr:
    """The ``role`` turns of a conversation column joined as one text (null when unusable)."""
    import polars as pl

    dtype = schema.get(conv)
    if not isinstance(dtype, pl.List) or not isinstance(dtype.inner, pl.Struct):
        return pl.lit(None, dtype=pl.String)
    fields = {f.name: f.dtype for f in dtype.inner.fields}
    if "role" not in fields or fields.get("content") != pl.String:
        return pl.lit(None, dtype=pl.String)
    element = pl.element()
    return (
        pl.col(conv)
        .list.eval(element.filter(element.struct.field("role") == role).struct.field("content"))
        .list.join("\n")
    )


def text_columns(schema: Mapping[str, Any]) -> list[pl.Expr]:
    """The prompt and both answers as text columns, for ``fill_from_text``."""
    return [
        turns_text(schema, "conversation_a", "user").alias("_user_text"),
        turns_text(schema, "conversation_a", "assistant").alias("_answer_a"),
        turns_text(schema, "conversation_b", "assistant").alias("_answer_b"),
    ]


def fill_from_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Where metadata is missing, derive style features, prompt length and the code tag
    from the conversation text; then drop the text columns (``code_tag`` becomes ``is_code``)."""
    import polars as pl

    from arena.pipeline.markdown_stats import approx_token_count, has_code, markdown_counts

    needs = frame.select(
        (pl.col("user_tokens").is_null() & pl.col("_user_text").is_not_null()).alias("u"),
        (
            pl.col("code_tag").is_null()
            & pl.any_horizontal(pl.col(c).is_not_null() for c in TEXT_COLUMNS)
        ).alias("c"),
        *[
            (
                pl.col(f"{STYLE_FEATURES[0]}_{s}").is_null() & pl.col(f"_answer_{s}").is_not_null()
            ).alias(f"s{s}")
            for s in ("a", "b")
        ],
    ).with_row_index("i")
    # Only rows lacking metadata go through Python; the public dump has metadata throughout.
    todo = needs.filter(pl.any_horizontal("u", "c", "sa", "sb"))
    if not todo.height:
        # No tag and no text to look at: not known to be about code.
        return (
            frame.drop(*TEXT_COLUMNS)
            .with_columns(pl.col("code_tag").fill_null(False).alias("is_code"))
            .drop("code_tag")
        )
    columns: dict[str, list[Any]] = {
        name: frame[name].to_list() for name in ("user_tokens", "code_tag", *STYLE_COLUMNS)
    }
    texts = {name: frame[name].to_list() for name in TEXT_COLUMNS}
    for i, need_u, need_c, need_a, need_b in todo.iter_rows():
        if need_u:
            columns["user_tokens"][i] = float(approx_token_count(texts["_user_text"][i] or ""))
        if need_c:
            columns["code_tag"][i] = any(has_code(texts[k][i] or "") for k in TEXT_COLUMNS)
        for side, need in (("a", need_a), ("b", need_b)):
            if not need:
                continue
            answer = texts[f"_answer_{side}"][i] or ""
            counts = markdown_counts(answer)
            columns[f"sum_assistant_tokens_{side}"][i] = float(approx_token_count(answer))
            for name in STYLE_FEATURES[1:]:
                columns[f"{name}_{side}"][i] = float(sum(counts[name].values()))
    updated = [
        pl.Series("user_tokens", columns["user_tokens"], dtype=pl.Float64),
        pl.Series("is_code", columns["code_tag"], dtype=pl.Boolean).fill_null(False),
        *[pl.Series(name, columns[name], dtype=pl.Float64) for name in STYLE_COLUMNS],
    ]
    return frame.drop(*TEXT_COLUMNS, "code_tag").with_columns(updated)
