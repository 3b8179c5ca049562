"""The canonical battles table: its columns, what a missing value means, and compact dtypes.

Kept apart from the readers and the normalizer so both (and the rating code) can share the
names without importing each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
STYLE_COLUMNS = tuple(f"{name}_{side}" for name in STYLE_FEATURES for side in ("a", "b"))
LONG_QUERY_TOKENS = 500
HARD_PROMPT_MIN_CRITERIA = 6

# Top-level keys of a battle the normalizer reads; everything else in a file is skipped.
SOURCE_FIELDS = (
    "model_a",
    "model_b",
    "winner",
    "judge",
    "turn",
    "anony",
    "language",
    "tstamp",
    "question_id",
    "leaked",
    "is_leaked",
    "is_code",
    "dedup_tag",
    "category_tag",
    "conv_metadata",
    "conversation_a",
    "conversation_b",
)

# Canonical columns (in table order) and what a missing value means.
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
        column: "conv_metadata, else computed from the answer text; null if neither"
        for column in STYLE_COLUMNS
    },
}


def column_dtypes() -> dict[str, pl.DataType]:
    """Compact dtype of every column. Model names repeat across millions of battles, so they
    are categorical; counts are whole numbers far below 2**24, so float32 holds them exactly.
    ``winner`` and ``language`` stay text because the filters use string expressions on them."""
    import polars as pl

    flags = (
        "anony",
        "leaked",
        "dedup_sampled",
        "dedup_high_freq",
        "is_hard",
        "is_code",
        "is_math",
        "is_instruction_following",
        "is_creative_writing",
        "is_multi_turn",
        "is_long_query",
    )
    dtypes: dict[str, pl.DataType] = {
        "model_a": pl.Categorical(),
        "model_b": pl.Categorical(),
        "winner": pl.String(),
        "judge": pl.String(),
        "turn": pl.Int32(),
        "language": pl.String(),
        "tstamp": pl.Float64(),  # epoch seconds need float64's precision
        "question_id": pl.String(),
        "criteria_count": pl.Int8(),
        "user_tokens": pl.Float32(),
        **{name: pl.Boolean() for name in flags},
        **{name: pl.Float32() for name in STYLE_COLUMNS},
    }
    return {name: dtypes[name] for name in COLUMNS}
