"""How many more battles each model needs before its interval is narrow enough.

Interval widths shrink like 1/sqrt(battles) when new battles follow the same mix of
opponents, so a model with n battles and width w reaches width t after about
n·(w/t)² battles in total. It is a planning estimate for pair sampling, not a guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arena.ratings.battles import Battles
from arena.ratings.errors import RatingInputError
from arena.ratings.matrices import battle_count_matrix


@dataclass(frozen=True)
class VotesNeeded:
    models: tuple[str, ...]
    battles: np.ndarray
    width: np.ndarray
    target_width: float
    extra_battles: np.ndarray


def votes_needed(intervals, battles: Battles, *, target_width: float) -> VotesNeeded:
    """Estimated additional battles per model to bring upper - lower down to target_width."""
    if target_width <= 0:
        raise RatingInputError("target_width must be > 0", param="target_width")
    if tuple(intervals.models) != battles.models:
        raise RatingInputError("intervals and battles cover different models")
    counts = battle_count_matrix(battles).sum(axis=1).astype(np.float64)
    width = np.asarray(intervals.upper) - np.asarray(intervals.lower)
    needed_total = counts * (width / target_width) ** 2
    extra = np.ceil(np.maximum(needed_total - counts, 0.0)).astype(np.int64)
    return VotesNeeded(
        models=battles.models,
        battles=counts.astype(np.int64),
        width=width,
        target_width=float(target_width),
        extra_battles=extra,
    )
