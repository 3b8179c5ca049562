"""Battles from any source → one flat Polars table the leaderboard works on.

Sources: the public clean-battle layout as a JSON array or JSON Lines, Parquet with the same
columns, or Arena's own database (a SQLAlchemy URL, read through ``arena.store.export``).
Nested fields (``category_tag``, ``dedup_tag``, ``conv_metadata``, conversations) are
flattened into typed columns; any key may be missing, in which case a documented default
applies (see ``COLUMNS``). The raw bytes (or exported rows) are hashed so results can name
the data snapshot they came from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.errors import BadRequest

if TYPE_CHECKING:
    import polars as pl

VALID_WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
CRITERIA = (
    "specificity",
    "domain_knowledge",
    "complexity",
    "problem_solving",
    "creativity",
    "technical_accuracy",
    "real_world",
)
# Per-side style features in the order handed to the rating engine.
STYLE_FEATURES = ("sum_assistant_tokens", "header_count", "list_count", "bold_count")
LONG_QUERY_TOKENS = 500
HARD_PROMPT_MIN_CRITERIA = 6

# Canonical columns and what a missing value means.
COLUMNS = {
    "model_a": "required",
    "model_b": "required",
    "winner": "required; one of " + ", ".join(VALID_WINNERS),
    "judge": "null when absent",
    "turn": "1 when absent",
    "anony": "true when absent (nothing says the names were shown)",
    "language": "'unknown' when absent",
    "tstamp": "null when absent (date filters then drop the battle)",
    "question_id": "null when absent",
    "leaked": "false unless a leaked/is_leaked flag says so",
    "dedup_sampled": "true when absent",
    "dedup_high_freq": "false when absent",
    "criteria_count": "number of the 7 criteria_v0.1 flags that are true",
    "is_hard": f"criteria_count >= {HARD_PROMPT_MIN_CRITERIA}",
    "is_code": "is_code tag when present, else a code block in the prompt or an answer",
    "is_math": "math_v0.1.math, false when absent",
    "is_instruction_following": "if_v0.1.if, false when absent",
    "is_creative_writing": "creative_writing_v0.1.creative_writing, false when absent",
    "is_multi_turn": "turn > 1",
    "user_tokens": "conv_metadata.sum_user_tokens, else approximated from the prompt",
    "is_long_query": f"user_tokens >= {LONG_QUERY_TOKENS}",
    **{
        f"{name}_{side}": "conv_metadata, else computed from the answer text; null if neither"
        for name in STYLE_FEATURES
        for side in ("a", "b")
    },
}


@dataclass(frozen=True)
class LoadedBattles:
    """A normalized battles table, where it came from and a hash of the raw input."""

    frame: pl.DataFrame
    source: str
    data_sha256: str

    @property
    def count(self) -> int:
        return self.frame.height


def is_database_url(source: str | Path) -> bool:
    text = str(source)
    return "://" in text and text.split("://", 1)[0].split("+", 1)[0] in (
        "sqlite",
        "postgresql",
        "postgres",
    )


def load_battles(source: str | Path) -> LoadedBattles:
    """Read battles from a file (``.json``, ``.jsonl``/``.ndjson``, ``.parquet``) or a
    database URL and normalize them. Raises ``BadRequest`` with a clear message on bad input."""
    if is_database_url(source):
        rows = _rows_from_database(str(source))
        digest = hashlib.sha256(
            json.dumps(rows, sort_keys=True, default=str).encode("utf-8")
        ).hexdigest()
        return LoadedBattles(normalize_rows(rows), str(source), digest)
    path = Path(source)
    if not path.is_file():
        raise BadRequest(f"battles file not found: {path}", param="battles")
    raw = _read_file(path)
    try:
        frame = normalize(raw)
    except BadRequest as e:
        # The column checks only count bad battles; name the first one's line instead.
        located = _locate_bad_battle(path)
        if located is None:
            raise
        raise located from e
    return LoadedBattles(frame, str(path), _file_sha256(path))


def normalize_rows(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Normalize battles given as dicts (e.g. from ``arena.store.export.clean_battles``)."""
    import polars as pl

    prepared = [_prepare_row(r) for r in rows]
    if not prepared:
        raise BadRequest("no battles in the input", param="battles")
    return normalize(pl.from_dicts(prepared, infer_schema_length=None))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rows_from_database(url: str) -> list[dict[str, Any]]:
    try:
        from arena.store.db import Database
        from arena.store.export import clean_battles
    except ImportError as e:  # the store area is a separate module
        raise BadRequest(f"reading battles from a database needs arena.store: {e}") from e
    db = Database(url)
    try:
        return list(clean_battles(db))
    finally:
        db.dispose()


def _first_non_space(path: Path) -> bytes:
    with path.open("rb") as f:
        while True:
            chunk = f.read(4096)
            if not chunk:
                return b""
            stripped = chunk.lstrip()
            if stripped:
                return stripped[:1]


def _read_file(path: Path) -> pl.DataFrame:
    import polars as pl

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        first = _first_non_space(path)
        if not first:
            raise BadRequest(f"{path} is empty", param="battles")
        # The public dump is one JSON array; JSON Lines has one object per line. Sniff
        # rather than trust the extension, since both appear as ".json" in the wild.
        if first == b"[":
            return pl.read_json(path, infer_schema_length=None)
        if first == b"{":
            return _read_ndjson(path)
        raise BadRequest(f"{path} is neither a JSON array, JSON Lines nor Parquet", param="battles")
    except BadRequest:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError) as e:
        # The fast readers report offsets within a block ("Syntax at character 0"); only now,
        # on the failure path, rescan the file to name the first bad line.
        located = _locate_bad_battle(path) if not isinstance(e, OSError) else None
        if located is not None:
            raise located from e
        raise BadRequest(f"cannot read battles from {path}: {e}", param="battles") from e


def _locate_bad_battle(path: Path) -> BadRequest | None:
    """The error naming the first bad line/item of a JSON or JSON Lines file, if one is found."""
    from arena.leaderboard.battle_file_errors import first_bad_item, first_bad_line

    first = _first_non_space(path)
    if path.suffix.lower() in (".parquet", ".pq") or first not in (b"[", b"{"):
        return None
    if first == b"[":
        return first_bad_item(path, VALID_WINNERS)
    return first_bad_line(path, VALID_WINNERS)


def _read_ndjson(path: Path) -> pl.DataFrame:
    """JSON Lines via PyArrow's multithreaded reader (several times faster than Polars' here);
    files whose fields change type between rows fall back to Polars, which widens types."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.json as pa_json

    try:
        return pl.from_arrow(pa_json.read_json(path))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pl.read_ndjson(path, infer_schema_length=None)


def _message_text(content: Any) -> str:
    """Plain text of a message: a string, or the text parts of a multimodal list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        # Some answer dumps store {"answer": "..."}.
        return "\n".join(_message_text(v) for v in content.values())
    if isinstance(content, list | tuple):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return str(content)


def _prepare_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Make a dict safe for one Polars schema: conversations as role/text pairs, ids as text."""
    out = dict(row)
    for key in ("conversation_a", "conversation_b"):
        conv = out.get(key)
        if conv is not None:
            out[key] = [
                {"role": str(m.get("role", "")), "content": _message_text(m.get("content"))}
                for m in conv
                if isinstance(m, Mapping)
            ]
    if out.get("question_id") is not None:
        out["question_id"] = str(out["question_id"])
    if isinstance(out.get("tstamp"), int):
        out["tstamp"] = float(out["tstamp"])
    return out


def _field(schema: Mapping[str, Any], path: tuple[str, ...]) -> tuple[pl.Expr, Any] | None:
    """The expression reaching a nested field and its dtype, or None when any key is missing."""
    import polars as pl

    if path[0] not in schema:
        return None
    expr = pl.col(path[0])
    dtype = schema[path[0]]
    for key in path[1:]:
        if not isinstance(dtype, pl.Struct):
            return None
        fields = {f.name: f.dtype for f in dtype.fields}
        if key not in fields:
            return None
        expr = expr.struct.field(key)
        dtype = fields[key]
    return expr, dtype


def _bool(schema: Mapping[str, Any], *paths: tuple[str, ...]) -> pl.Expr:
    """First present path as a nullable boolean (strings 'true'/'false' accepted)."""
    import polars as pl

    exprs = []
    for path in paths:
        found = _field(schema, path)
        if found is None:
            continue
        expr, dtype = found
        if dtype == pl.Boolean:
            exprs.append(expr)
        elif dtype == pl.String:
            exprs.append(expr.str.to_lowercase().is_in(["true", "1", "yes"]))
        elif dtype.is_numeric():
            exprs.append(expr.cast(pl.Float64) != 0)
    if not exprs:
        return pl.lit(None, dtype=pl.Boolean)
    return pl.coalesce(exprs)


def _number(schema: Mapping[str, Any], path: tuple[str, ...]) -> pl.Expr:
    """A numeric field, or the sum of a struct of numbers (e.g. header_count_a)."""
    import polars as pl

    found = _field(schema, path)
    if found is None:
        return pl.lit(None, dtype=pl.Float64)
    expr, dtype = found
    if isinstance(dtype, pl.Struct):
        names = [f.name for f in dtype.fields if f.dtype.is_numeric()]
        if not names:
            return pl.lit(None, dtype=pl.Float64)
        parts = [expr.struct.field(n).cast(pl.Float64) for n in names]
        # A struct that is itself null stays null; missing levels count as zero.
        return pl.when(expr.is_null()).then(None).otherwise(pl.sum_horizontal(parts))
    if dtype.is_numeric():
        return expr.cast(pl.Float64)
    if dtype == pl.String:
        return expr.cast(pl.Float64, strict=False)
    return pl.lit(None, dtype=pl.Float64)


def _text(schema: Mapping[str, Any], name: str) -> pl.Expr:
    import polars as pl

    if name not in schema:
        return pl.lit(None, dtype=pl.String)
    dtype = schema[name]
    if dtype == pl.String:
        return pl.col(name)
    if dtype.is_numeric() or dtype == pl.Boolean:
        return pl.col(name).cast(pl.String)
    return pl.lit(None, dtype=pl.String)


def _turns_text(schema: Mapping[str, Any], conv: str, role: str) -> pl.Expr:
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


def normalize(raw: pl.DataFrame) -> pl.DataFrame:
    """Flatten a raw battles frame (any subset of the public columns) to the canonical table."""
    import polars as pl

    from arena.pipeline.markdown_stats import approx_token_count, has_code, markdown_counts

    if raw.height == 0:
        raise BadRequest("no battles in the input", param="battles")
    schema = raw.schema
    missing = [c for c in ("model_a", "model_b", "winner") if c not in schema]
    if missing:
        raise BadRequest(f"battles lack required column(s): {', '.join(missing)}", param="battles")
    criteria = [
        _bool(schema, ("category_tag", "criteria_v0.1", name)).fill_null(False).cast(pl.Int32)
        for name in CRITERIA
    ]
    turn = _number(schema, ("turn",))
    meta = ("conv_metadata",)
    frame = raw.select(
        pl.col("model_a").cast(pl.String),
        pl.col("model_b").cast(pl.String),
        pl.col("winner").cast(pl.String),
        _text(schema, "judge").alias("judge"),
        turn.fill_null(1).cast(pl.Int64).alias("turn"),
        _bool(schema, ("anony",)).fill_null(True).alias("anony"),
        _text(schema, "language").fill_null("unknown").alias("language"),
        _number(schema, ("tstamp",)).alias("tstamp"),
        _text(schema, "question_id").alias("question_id"),
        _bool(schema, ("leaked",), ("is_leaked",)).fill_null(False).alias("leaked"),
        _bool(schema, ("dedup_tag", "sampled")).fill_null(True).alias("dedup_sampled"),
        _bool(schema, ("dedup_tag", "high_freq")).fill_null(False).alias("dedup_high_freq"),
        pl.sum_horizontal(criteria).alias("criteria_count"),
        _bool(schema, ("category_tag", "math_v0.1", "math")).fill_null(False).alias("is_math"),
        _bool(schema, ("category_tag", "if_v0.1", "if"))
        .fill_null(False)
        .alias("is_instruction_following"),
        _bool(schema, ("category_tag", "creative_writing_v0.1", "creative_writing"))
        .fill_null(False)
        .alias("is_creative_writing"),
        _bool(schema, ("is_code",), ("category_tag", "is_code"), ("category_tag", "code")).alias(
            "code_tag"
        ),
        _number(schema, (*meta, "sum_user_tokens")).alias("user_tokens"),
        *[
            _number(schema, (*meta, f"sum_assistant_{side}_tokens")).alias(
                f"sum_assistant_tokens_{side}"
            )
            for side in ("a", "b")
        ],
        *[
            _number(schema, (*meta, f"{name}_{side}")).alias(f"{name}_{side}")
            for name in STYLE_FEATURES[1:]
            for side in ("a", "b")
        ],
        _turns_text(schema, "conversation_a", "user").alias("_user_text"),
        _turns_text(schema, "conversation_a", "assistant").alias("_answer_a"),
        _turns_text(schema, "conversation_b", "assistant").alias("_answer_b"),
    )

    bad = frame.filter(~pl.col("winner").is_in(list(VALID_WINNERS)) | pl.col("winner").is_null())[
        "winner"
    ]
    if bad.len():
        shown = sorted({str(v) for v in bad.unique().to_list()})[:10]
        raise BadRequest(
            f"{bad.len()} battle(s) have an unknown winner value: {', '.join(shown)} "
            f"(expected one of {', '.join(VALID_WINNERS)})",
            param="winner",
        )
    if frame["model_a"].null_count() or frame["model_b"].null_count():
        raise BadRequest("some battles have no model_a/model_b name", param="model_a")

    frame = _fill_from_text(frame, approx_token_count, markdown_counts, has_code)
    return frame.with_columns(
        (pl.col("criteria_count") >= HARD_PROMPT_MIN_CRITERIA).alias("is_hard"),
        (pl.col("turn") > 1).alias("is_multi_turn"),
        (pl.col("user_tokens") >= LONG_QUERY_TOKENS).fill_null(False).alias("is_long_query"),
    )


def _fill_from_text(frame: pl.DataFrame, count_tokens, count_markdown, code_in) -> pl.DataFrame:
    """Where metadata is missing, derive style features, prompt length and the code tag
    from the conversation text; then drop the text columns."""
    import polars as pl

    style_cols = [f"{n}_{s}" for n in STYLE_FEATURES for s in ("a", "b")]
    needs = frame.select(
        (pl.col("user_tokens").is_null() & pl.col("_user_text").is_not_null()).alias("u"),
        (
            pl.col("code_tag").is_null()
            & pl.any_horizontal(
                pl.col(c).is_not_null() for c in ("_user_text", "_answer_a", "_answer_b")
            )
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
    columns: dict[str, list[Any]] = (
        {name: frame[name].to_list() for name in ("user_tokens", "code_tag", *style_cols)}
        if todo.height
        else {}
    )
    texts = (
        {name: frame[name].to_list() for name in ("_user_text", "_answer_a", "_answer_b")}
        if todo.height
        else {}
    )
    for i, need_u, need_c, need_a, need_b in todo.iter_rows():
        if need_u:
            columns["user_tokens"][i] = float(count_tokens(texts["_user_text"][i] or ""))
        if need_c:
            columns["code_tag"][i] = any(
                code_in(texts[k][i] or "") for k in ("_user_text", "_answer_a", "_answer_b")
            )
        for side, need in (("a", need_a), ("b", need_b)):
            if not need:
                continue
            answer = texts[f"_answer_{side}"][i] or ""
            counts = count_markdown(answer)
            columns[f"sum_assistant_tokens_{side}"][i] = float(count_tokens(answer))
            for name in STYLE_FEATURES[1:]:
                columns[f"{name}_{side}"][i] = float(sum(counts[name].values()))
    frame = frame.drop("_user_text", "_answer_a", "_answer_b")
    if not todo.height:
        return frame.rename({"code_tag": "is_code"})
    updated = [
        pl.Series("user_tokens", columns["user_tokens"], dtype=pl.Float64),
        pl.Series("is_code", columns["code_tag"], dtype=pl.Boolean).fill_null(False),
        *[pl.Series(name, columns[name], dtype=pl.Float64) for name in style_cols],
    ]
    return frame.drop("code_tag").with_columns(updated)
