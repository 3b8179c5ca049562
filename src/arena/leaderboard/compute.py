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
from arena.leaderboard.battle_table import STYLE_FEATURES
from arena.leaderboard.table import Leaderboard, ModelRow

if TYPE_CHECKING:
    import polars as pl

    from arena.leaderboard.filters import BattleFilters


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


def win_counts(frame: pl.DataFrame) -> dict[str, tuple[int, int, int, int]]:
    """Model → (battles, wins, losses, ties), counted from both sides."""
    import polars as pl

    sides = []
    for me, other_win, my_win in (
        ("model_a", "model_b", "model_a"),
        ("model_b", "model_a", "model_b"),
    ):
        sides.append(
            frame.select(
                pl.col(me).alias("model"),
                (pl.col("winner") == my_win).cast(pl.Int64).alias("win"),
                (pl.col("winner") == other_win).cast(pl.Int64).alias("loss"),
                pl.col("winner").str.starts_with("tie").cast(pl.Int64).alias("tie"),
            )
        )
    totals = (
        pl.concat(sides)
        .group_by("model")
        .agg(pl.len().alias("n"), pl.sum("win"), pl.sum("loss"), pl.sum("tie"))
    )
    return {
        row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in totals.iter_rows()
    }


def _battles(frame: pl.DataFrame, *, with_style: bool):
    from arena.ratings import Battles

    kwargs: dict[str, Any] = {}
    if with_style:
        a, b, names = style_feature_arrays(frame)
        kwargs.update(features_a=a, features_b=b, feature_names=names)
    if frame["tstamp"].null_count() == 0:
        kwargs["tstamp"] = frame["tstamp"].to_numpy()
    return Battles.from_columns(
        frame["model_a"].to_numpy(),
        frame["model_b"].to_numpy(),
        frame["winner"].to_numpy(),
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
    fit_kwargs: dict[str, Any] = {"scale": settings.scale, "init_rating": settings.init_rating}
    if settings.anchor is not None:
        fit_kwargs["anchor"] = settings.anchor
    coefficients: dict[str, dict[str, float]] = {}
    if style_control:
        fit = ratings.fit_style_control(
            battles,
            normalization=settings.style_normalization,
            ci=settings.ci,
            rounds=settings.rounds,
            seed=settings.seed,
            confidence=settings.confidence,
            compare_plain=False,  # the plain board is computed on its own
            **fit_kwargs,
        )
        result: Any = fit
        coefficients = _coefficients(fit)
    elif settings.ci == "bootstrap":
        result = ratings.bootstrap_intervals(
            battles,
            rounds=settings.rounds,
            seed=settings.seed,
            confidence=settings.confidence,
            **fit_kwargs,
        )
    else:
        result = ratings.sandwich_intervals(battles, confidence=settings.confidence, **fit_kwargs)
    models, values, lower, upper = result.models, result.ratings, result.lower, result.upper

    rank = ratings.rank_upper_bound(np.asarray(lower), np.asarray(upper))
    counts = win_counts(frame)
    rows = [
        ModelRow(str(m), float(r), float(lo), float(hi), int(k), *counts.get(str(m), (0, 0, 0, 0)))
        for m, r, lo, hi, k in zip(models, values, lower, upper, rank, strict=True)
    ]
    rows.sort(key=lambda row: (row.rank_ub, -row.rating, row.model))
    extra = dict(meta or {})
    counts_meta = {
        **(extra.pop("counts", None) or {}),
        "battles_rated": frame.height,
        "models": len(rows),
        "dropped_missing_style_features": dropped_for_style,
    }
    full_meta = {
        "category": category,
        "style_control": style_control,
        "method": {
            "model": "bradley_terry" + ("+style_control" if style_control else ""),
            **settings.to_dict(),
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "arena_version": _version(),
        # What the rating engine reported (e.g. a regularized fit where no finite MLE exists).
        "warnings": [str(w) for w in getattr(result, "warnings", ())],
        **extra,
        "counts": counts_meta,
    }
    uncertainty = None
    covariance = getattr(result, "covariance", None)
    if not style_control and covariance is not None:
        names = [str(m) for m in models]
        uncertainty = {
            "models": names,
            "covariance": np.asarray(covariance, dtype=float).round(6).tolist(),
            "battle_counts": pair_counts(frame, names).tolist(),
        }
    return Leaderboard(
        category, style_control, tuple(rows), coefficients, full_meta, uncertainty=uncertainty
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
