"""Filtered battles → a ``Leaderboard``: hands arrays to ``arena.ratings`` and assembles rows.

All rating math (Bradley–Terry, intervals, style control, ranks) is ``arena.ratings``'s; this
module only turns table columns into the arrays it takes and counts wins for display.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from arena.errors import BadRequest
from arena.leaderboard.battle_columns import STYLE_FEATURES
from arena.leaderboard.board_rows import assemble_rows
from arena.leaderboard.table import Leaderboard

if TYPE_CHECKING:
    import polars as pl

    from arena.leaderboard.filters import BattleFilters


DEFAULT_MIN_BATTLES = 300

# The columns a fit reads: selecting battles keeps only these (the rest is for filtering).
RATING_COLUMNS = (
    "model_a",
    "model_b",
    "winner",
    "tstamp",
    *(f"{name}_{side}" for name in STYLE_FEATURES for side in ("a", "b")),
)


@dataclass(frozen=True)
class RatingSettings:
    """How ratings and intervals are computed (which battles count is ``BattleFilters``)."""

    ci: Literal["bootstrap", "sandwich"] = "bootstrap"
    rounds: int = 100
    seed: int = 0
    confidence: float = 0.95
    anchor: tuple[str, float] | None = None
    scale: float = 400.0
    init_rating: float = 1000.0
    style_normalization: Literal["reference", "fastchat"] = "reference"
    ties: Literal["half", "davidson"] = "half"
    simultaneous: Literal["bonferroni", "chi2"] | None = None
    reweight: Literal["ipw"] | None = None
    # Models with fewer battles are listed as preliminary and not ranked (public boards
    # use a few hundred; 0 ranks everyone).
    min_battles: int = DEFAULT_MIN_BATTLES
    elo: bool = False
    votes_needed_width: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["anchor"] = list(self.anchor) if self.anchor else None
        return out


def settings_digest(
    data_sha256: str, filters: BattleFilters, settings: RatingSettings, *, length: int = 16
) -> str:
    """The data snapshot id: a hash of the input battles plus every setting that shapes the
    result, so equal ids mean equal inputs and equal methods."""
    payload = json.dumps(
        {"data": data_sha256, "filters": filters.to_dict(), "settings": settings.to_dict()},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def style_feature_arrays(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Per-side style features, shape (n, k) each, in ``STYLE_FEATURES`` order."""
    a = frame.select([f"{n}_a" for n in STYLE_FEATURES]).to_numpy().astype(float)
    b = frame.select([f"{n}_b" for n in STYLE_FEATURES]).to_numpy().astype(float)
    return a, b, STYLE_FEATURES


def _battles(frame: pl.DataFrame, *, with_style: bool):
    from arena.ratings import Battles

    kwargs: dict[str, Any] = {}
    if with_style:
        a, b, names = style_feature_arrays(frame)
        kwargs.update(features_a=a, features_b=b, feature_names=names)
    if frame["tstamp"].null_count() == 0:
        kwargs["tstamp"] = frame["tstamp"].to_numpy()
    return Battles.from_columns(
        frame["model_a"],
        frame["model_b"],
        frame["winner"],
        **kwargs,
    )


def compute_leaderboard(
    frame: pl.DataFrame,
    *,
    category: str,
    style_control: bool,
    settings: RatingSettings,
    meta: dict[str, Any] | None = None,
) -> Leaderboard:
    """Rate the (already filtered) battles; ``meta`` is merged into the result's meta."""
    import polars as pl

    from arena import ratings

    dropped_for_style = 0
    if style_control:
        complete = pl.all_horizontal(
            [pl.col(f"{n}_{s}").is_not_null() for n in STYLE_FEATURES for s in ("a", "b")]
        )
        kept = frame.filter(complete)
        dropped_for_style = frame.height - kept.height
        frame = kept
    if frame.height == 0:
        raise BadRequest(
            f"no battles left to rate for category {category!r}"
            + (" with style features" if style_control else ""),
            param="category",
        )

    battles = _battles(frame, with_style=style_control)
    fit_kwargs: dict[str, Any] = {
        "scale": settings.scale,
        "init_rating": settings.init_rating,
        "reweight": settings.reweight,
    }
    if settings.anchor is not None:
        fit_kwargs["anchor"] = settings.anchor
    interval_kwargs: dict[str, Any] = {
        "confidence": settings.confidence,
        "simultaneous": settings.simultaneous,
    }
    if settings.ci == "bootstrap":
        interval_kwargs.update(rounds=settings.rounds, seed=settings.seed)
    coefficients: dict[str, dict[str, float]] = {}
    if style_control:
        fit = ratings.fit_style_control(
            battles,
            normalization=settings.style_normalization,
            ci=settings.ci,
            compare_plain=False,  # the plain board is computed on its own
            **({"ties": settings.ties} if settings.ties != "half" else {}),
            **interval_kwargs,
            **fit_kwargs,
        )
        result: Any = fit
        coefficients = _coefficients(fit)
    elif settings.ci == "bootstrap":
        result = ratings.bootstrap_intervals(
            battles, ties=settings.ties, **interval_kwargs, **fit_kwargs
        )
    else:
        result = ratings.sandwich_intervals(
            battles, ties=settings.ties, **interval_kwargs, **fit_kwargs
        )

    assembled = assemble_rows(frame, battles, result, settings, with_elo=not style_control)
    extra = dict(meta or {})
    counts_meta = {
        **(extra.pop("counts", None) or {}),
        "battles_rated": frame.height,
        "models": len(assembled.rows),
        "dropped_missing_style_features": dropped_for_style,
        "preliminary": sum(row.preliminary for row in assembled.rows),
        "parts": assembled.parts,
    }
    model_name = "davidson" if settings.ties == "davidson" else "bradley_terry"
    full_meta = {
        "category": category,
        "style_control": style_control,
        "method": {
            "model": model_name + ("+style_control" if style_control else ""),
            **settings.to_dict(),
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "arena_version": _version(),
        # Everything the data cannot support, in plain words (also shown with the board).
        "warnings": [*(str(w) for w in getattr(result, "warnings", ())), *assembled.warnings],
        **extra,
        "counts": counts_meta,
    }
    uncertainty = None
    covariance = getattr(result, "covariance", None)
    if not style_control and covariance is not None:
        names = [str(m) for m in result.models]
        order = [battles.model_index(m) for m in names]
        observed = ratings.observed_win_fraction(battles)[np.ix_(order, order)]
        uncertainty = {
            "models": names,
            "covariance": np.asarray(covariance, dtype=float).round(6).tolist(),
            "battle_counts": pair_counts(frame, names).tolist(),
            # Observed share of i's battles against j that i won (ties half); null: none.
            "win_fraction": [
                [None if np.isnan(v) else round(float(v), 4) for v in row] for row in observed
            ],
        }
    return Leaderboard(
        category,
        style_control,
        assembled.rows,
        coefficients,
        full_meta,
        uncertainty=uncertainty,
    )


def pair_counts(frame: pl.DataFrame, models: list[str]) -> np.ndarray:
    """Battles played per pair of ``models`` (symmetric, in that order)."""
    index = {m: i for i, m in enumerate(models)}
    a = np.array([index.get(m, -1) for m in frame["model_a"].to_list()], dtype=int)
    b = np.array([index.get(m, -1) for m in frame["model_b"].to_list()], dtype=int)
    known = (a >= 0) & (b >= 0)
    counts = np.zeros((len(models), len(models)), dtype=int)
    np.add.at(counts, (a[known], b[known]), 1)
    return counts + counts.T


def _coefficients(fit: Any) -> dict[str, dict[str, float]]:
    """Style coefficients (log-odds per normalized unit) with their interval bounds."""
    lower = getattr(fit, "coefficient_lower", None) or {}
    upper = getattr(fit, "coefficient_upper", None) or {}
    out: dict[str, dict[str, float]] = {}
    for name, value in dict(fit.coefficients).items():
        entry = {"value": float(value)}
        if name in lower and name in upper:
            entry["lower"], entry["upper"] = float(lower[name]), float(upper[name])
        out[str(name)] = entry
    return out


def _version() -> str:
    from arena import __version__

    return __version__
