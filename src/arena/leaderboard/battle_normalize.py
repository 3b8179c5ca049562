"""One raw batch of battles (any subset of the public columns) → the compact canonical table.

Readers hand over batches whose schema they inferred from that batch alone, so every
expression here is built from the batch's schema: a key that is missing, null throughout or
of an unusable type takes the default documented in ``COLUMNS``. Output dtypes are fixed
(``column_dtypes``), so batches read separately concatenate into one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from arena.errors import BadRequest
from arena.leaderboard.battle_columns import (
    COLUMNS,
    CRITERIA,
    HARD_PROMPT_MIN_CRITERIA,
    LONG_QUERY_TOKENS,
    STYLE_FEATURES,
    VALID_WINNERS,
    column_dtypes,
)
from arena.leaderboard.battle_text_features import fill_from_text, text_columns

if TYPE_CHECKING:
    import polars as pl


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


def _is_text(dtype: Any) -> bool:
    import polars as pl

    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


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
        elif _is_text(dtype):
            exprs.append(expr.cast(pl.String).str.to_lowercase().is_in(["true", "1", "yes"]))
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
    if _is_text(dtype):
        return expr.cast(pl.String).cast(pl.Float64, strict=False)
    return pl.lit(None, dtype=pl.Float64)


def _text(schema: Mapping[str, Any], name: str) -> pl.Expr:
    import polars as pl

    if name not in schema:
        return pl.lit(None, dtype=pl.String)
    dtype = schema[name]
    if _is_text(dtype) or dtype.is_numeric() or dtype == pl.Boolean:
        return pl.col(name).cast(pl.String)
    return pl.lit(None, dtype=pl.String)


def _check_required(frame: pl.DataFrame) -> None:
    import polars as pl

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


def normalize(raw: pl.DataFrame) -> pl.DataFrame:
    """Flatten a raw battles frame (any subset of the public columns) to the canonical table,
    columns in ``COLUMNS`` order with the dtypes of ``column_dtypes``."""
    import polars as pl

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
    meta = ("conv_metadata",)
    frame = raw.select(
        *[pl.col(name).cast(pl.String) for name in ("model_a", "model_b", "winner")],
        _text(schema, "judge").alias("judge"),
        _number(schema, ("turn",)).fill_null(1).cast(pl.Int64).alias("turn"),
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
        *text_columns(schema),
    )
    _check_required(frame)
    frame = fill_from_text(frame).with_columns(
        (pl.col("criteria_count") >= HARD_PROMPT_MIN_CRITERIA).alias("is_hard"),
        (pl.col("turn") > 1).alias("is_multi_turn"),
        (pl.col("user_tokens") >= LONG_QUERY_TOKENS).fill_null(False).alias("is_long_query"),
    )
    dtypes = column_dtypes()
    return frame.select(pl.col(name).cast(dtypes[name]) for name in COLUMNS)
