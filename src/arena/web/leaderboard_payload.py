"""The JSON the leaderboard page and ``GET /api/leaderboard`` share, and its documentation.

The payload says what the board is unsure of rather than hiding it: preliminary models
(too few battles) come after the ranked ones with no rank, an unbounded interval side is
``null`` (JSON has no infinity, and a bare ``Infinity`` or ``NaN`` would make the body
unreadable), and the board's warnings and method travel with the rows. LLM-judge scores
(MT-Bench, Arena-Hard) ride along when ``arena judge`` reports name the board's models.
Its text is English; codes beside it (``warning_codes``, each category's ``name`` and
``language``) let the page word it in the reader's language (``leaderboard_text.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from arena.leaderboard.artifacts import ArtifactSet
from arena.leaderboard.filters import category_label
from arena.leaderboard.table import Leaderboard, ModelRow
from arena.web.judge_results import JudgeResults, JudgeScore
from arena.web.leaderboard_text import category_language, warning_code

ModelInfo = Mapping[str, tuple[str, str]]
DEFAULT_MIN_BATTLES = 300


class LeaderboardRow(BaseModel):
    rank: int | None = Field(description="Rank upper bound; null for preliminary models.")
    model: str
    rating: float | None
    ci_lower: float | None = Field(description="null when the interval is unbounded below.")
    ci_upper: float | None = Field(description="null when the interval is unbounded above.")
    num_battles: int
    win_rate: float
    organization: str
    license: str
    preliminary: bool = Field(description="Fewer battles than `min_battles`: not ranked.")
    part: int = Field(description="Connected part of the comparison graph (1 = largest).")
    notes: list[str] = Field(description="never_lost, never_won, all_ties, regularized.")
    elo: float | None = None
    elo_lower: float | None = None
    elo_upper: float | None = None
    votes_needed: int | None = Field(
        default=None, description="More battles needed for the interval to reach the target."
    )
    mt_bench: float | None = Field(default=None, description="MT-Bench score (1–10).")
    arena_hard: float | None = Field(
        default=None, description="Arena-Hard win rate against the baseline, in percent."
    )
    arena_hard_lower: float | None = None
    arena_hard_upper: float | None = None


class LeaderboardCategory(BaseModel):
    name: str
    label: str
    language: str | None = Field(
        default=None, description="A language category's language code (BCP 47)."
    )
    style_control: list[bool]


class LeaderboardWarning(BaseModel):
    code: str | None = Field(description="A known warning's code; null for any other.")
    params: dict[str, Any] = Field(description="The numbers and names the warning states.")


class LeaderboardFilters(BaseModel):
    organization: str | None
    license: str | None
    min_votes: int


class LeaderboardColumns(BaseModel):
    """Optional columns the board has data for (computed over all its models)."""

    part: bool
    elo: bool
    votes_needed: bool


class LeaderboardJudge(BaseModel):
    """LLM-judge columns: shown when a report scores at least one model of the board."""

    mt_bench: bool
    arena_hard: bool
    arena_hard_baseline: str | None = Field(description="The model Arena-Hard compares to.")
    arena_hard_style: bool = Field(description="Arena-Hard scores are style-controlled.")


class LeaderboardMeta(BaseModel):
    counts: dict[str, Any]
    method: dict[str, Any]
    data_sha256: str | None = None
    created: str | None = None
    arena_version: str | None = None


class LeaderboardData(BaseModel):
    """``GET /api/leaderboard`` (documentation only: the route returns the dict as is)."""

    snapshot: str
    created: str
    category: str
    category_label: str
    style_control: bool
    categories: list[LeaderboardCategory]
    organizations: list[str]
    licenses: list[str]
    filters: LeaderboardFilters
    total_models: int
    models: list[LeaderboardRow] = Field(description="Ranked models first, then preliminary.")
    style_coefficients: dict[str, dict[str, float | None]]
    warnings: list[str] = Field(description="What to keep in mind when reading the board.")
    warning_codes: list[LeaderboardWarning] = Field(
        description="The warnings as codes with parameters, in the same order."
    )
    min_battles: int = Field(description="Models with fewer battles are preliminary.")
    parts: int = Field(description="Connected parts; ranks only compare within a part.")
    columns: LeaderboardColumns
    judge: LeaderboardJudge
    meta: LeaderboardMeta


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float turned into ``None`` (valid, strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _rounded(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def board_min_battles(board: Leaderboard) -> int:
    value = (board.meta.get("method") or {}).get("min_battles")
    return int(value) if value is not None else DEFAULT_MIN_BATTLES


def board_parts(board: Leaderboard) -> int:
    counted = (board.meta.get("counts") or {}).get("parts")
    seen = max((m.part for m in board.models), default=1)
    return max(int(counted or 1), int(seen))


def row_payload(
    row: ModelRow, organization: str, license: str, judged: JudgeScore | None = None
) -> dict[str, Any]:
    """One model's row (rounded; unbounded or missing numbers are ``None``)."""
    judged = judged or JudgeScore()
    return {
        "rank": row.rank_ub,
        "model": row.model,
        "rating": _rounded(row.rating, 2),
        "ci_lower": _rounded(row.ci_lower, 2),
        "ci_upper": _rounded(row.ci_upper, 2),
        "num_battles": row.num_battles,
        "win_rate": _rounded(row.win_rate, 4) or 0.0,
        "organization": organization,
        "license": license,
        "preliminary": row.preliminary,
        "part": row.part,
        "notes": list(row.notes),
        "elo": _rounded(row.elo, 2),
        "elo_lower": _rounded(row.elo_lower, 2),
        "elo_upper": _rounded(row.elo_upper, 2),
        "votes_needed": row.votes_needed,
        "mt_bench": _rounded(judged.mt_bench, 2),
        "arena_hard": _rounded(judged.arena_hard, 1),
        "arena_hard_lower": _rounded(judged.arena_hard_lower, 1),
        "arena_hard_upper": _rounded(judged.arena_hard_upper, 1),
    }


def judge_columns(
    board: Leaderboard, judge: JudgeResults | None
) -> tuple[dict[str, JudgeScore], dict[str, Any]]:
    """The board's judge scores per model, and which judge columns to show."""
    scores = judge.for_board(board.style_control) if judge is not None else {}
    scored = [scores[m.model] for m in board.models if m.model in scores]
    return scores, {
        "mt_bench": any(s.mt_bench is not None for s in scored),
        "arena_hard": any(s.arena_hard is not None for s in scored),
        "arena_hard_baseline": judge.baseline if judge is not None else None,
        "arena_hard_style": bool(board.style_control and judge is not None and judge.has_style),
    }


def leaderboard_payload(
    artifact_set: ArtifactSet,
    board: Leaderboard,
    *,
    model_info: ModelInfo,
    organization: str | None = None,
    license: str | None = None,
    min_votes: int = 0,
    judge: JudgeResults | None = None,
) -> dict[str, Any]:
    """The JSON the page and the API share (filters applied, ranks as computed)."""
    scores, judged = judge_columns(board, judge)
    rows = []
    for row in board.models:
        org, lic = model_info.get(row.model, ("", ""))
        if organization and org != organization:
            continue
        if license and lic != license:
            continue
        if row.num_battles < min_votes:
            continue
        rows.append(row_payload(row, org, lic, scores.get(row.model)))
    # Preliminary models are never listed above a ranked one (a stable sort keeps the rest).
    rows.sort(key=lambda r: r["preliminary"])
    rated = [m.model for m in board.models]
    categories = [
        {
            "name": name,
            "label": category_label(name),
            "language": category_language(name),
            "style_control": [mode for mode in (False, True) if artifact_set.has(name, mode)],
        }
        for name in artifact_set.categories
    ]
    meta = board.meta
    warnings = [str(w) for w in meta.get("warnings") or []]
    columns = {
        "part": board_parts(board) > 1,
        "elo": any(m.elo is not None for m in board.models),
        "votes_needed": any(m.votes_needed is not None for m in board.models),
    }
    return json_safe(
        {
            "snapshot": artifact_set.snapshot,
            "created": artifact_set.created,
            "category": board.category,
            "category_label": category_label(board.category),
            "style_control": board.style_control,
            "categories": categories,
            "organizations": sorted({model_info[m][0] for m in rated if m in model_info} - {""}),
            "licenses": sorted({model_info[m][1] for m in rated if m in model_info} - {""}),
            "filters": {"organization": organization, "license": license, "min_votes": min_votes},
            "total_models": len(board.models),
            "models": rows,
            "style_coefficients": board.style_coefficients,
            "warnings": warnings,
            "warning_codes": [warning_code(w) for w in warnings],
            "min_battles": board_min_battles(board),
            "parts": board_parts(board),
            "columns": columns,
            "judge": judged,
            "meta": {
                "counts": meta.get("counts", {}),
                "method": meta.get("method", {}),
                "data_sha256": meta.get("data_sha256"),
                "created": meta.get("created"),
                "arena_version": meta.get("arena_version"),
            },
        }
    )
