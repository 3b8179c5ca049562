"""Online Elo: ratings updated battle by battle in time order.

Kept for continuity with earlier leaderboards; unlike Bradley–Terry it depends on the
order of battles, which is why battles are put in timestamp order (stably) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from arena.ratings.battles import A_WINS, B_WINS, Battles
from arena.ratings.errors import RatingInputError


@dataclass(frozen=True)
class EloRatings:
    models: tuple[str, ...]
    ratings: np.ndarray
    n_battles: int

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.models, self.ratings.tolist(), strict=True))


def compute_elo(
    model_a: Sequence[str] | np.ndarray,
    model_b: Sequence[str] | np.ndarray,
    winner: Sequence[str] | np.ndarray,
    *,
    k: float = 4.0,
    base: float = 10.0,
    scale: float = 400.0,
    init_rating: float = 1000.0,
    tstamp: Sequence[float] | np.ndarray | None = None,
) -> EloRatings:
    """Online Elo over battles in the given order, or in stable ``tstamp`` order when given.

    Ties (both kinds) score one half for each side.
    """
    if k <= 0 or scale <= 0 or base <= 1:
        raise RatingInputError("k and scale must be > 0 and base > 1")
    battles = Battles.from_columns(model_a, model_b, winner, tstamp=tstamp)
    order = (
        np.argsort(battles.tstamp, kind="stable")
        if battles.tstamp is not None
        else np.arange(battles.n_battles)
    )
    score_a = np.where(
        battles.outcome == A_WINS, 1.0, np.where(battles.outcome == B_WINS, 0.0, 0.5)
    )[order].tolist()
    a_list = battles.model_a[order].tolist()
    b_list = battles.model_b[order].tolist()
    ratings = [float(init_rating)] * battles.n_models
    for a, b, s in zip(a_list, b_list, score_a, strict=True):
        ra, rb = ratings[a], ratings[b]
        expected_a = 1.0 / (1.0 + base ** ((rb - ra) / scale))
        delta = k * (s - expected_a)
        ratings[a] = ra + delta
        ratings[b] = rb - delta
    return EloRatings(models=battles.models, ratings=np.array(ratings), n_battles=battles.n_battles)
