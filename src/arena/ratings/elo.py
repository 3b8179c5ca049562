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
    ratings = _online(battles, order, k=k, base=base, scale=scale, init_rating=init_rating)
    return EloRatings(models=battles.models, ratings=ratings, n_battles=battles.n_battles)


def _online(
    battles: Battles, order: np.ndarray, *, k: float, base: float, scale: float, init_rating: float
) -> np.ndarray:
    """Elo updates over ``battles`` taken in ``order`` (indices, repeats allowed)."""
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
    return np.array(ratings)


@dataclass(frozen=True)
class EloIntervals:
    """Online Elo in time order, with percentile bounds over bootstrap rounds."""

    models: tuple[str, ...]
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rounds: int


def elo_intervals(
    battles: Battles,
    *,
    rounds: int = 100,
    seed: int = 0,
    confidence: float = 0.95,
    k: float = 4.0,
    base: float = 10.0,
    scale: float = 400.0,
    init_rating: float = 1000.0,
) -> EloIntervals:
    """Elo with bootstrap intervals as earlier public leaderboards computed them: each round
    replays battles drawn with replacement, in the random order drawn, so the spread mixes
    sampling noise with Elo's order dependence. Costs one pass over the battles per round."""
    if rounds < 2:
        raise RatingInputError("bootstrap needs at least 2 rounds", param="rounds")
    if not 0 < confidence < 1:
        raise RatingInputError(f"confidence must be in (0, 1), got {confidence}")
    order = (
        np.argsort(battles.tstamp, kind="stable")
        if battles.tstamp is not None
        else np.arange(battles.n_battles)
    )
    common = dict(k=k, base=base, scale=scale, init_rating=init_rating)
    point = _online(battles, order, **common)
    rng = np.random.default_rng(seed)
    n = battles.n_battles
    samples = np.stack([_online(battles, rng.integers(0, n, n), **common) for _ in range(rounds)])
    alpha = 1.0 - confidence
    return EloIntervals(
        models=battles.models,
        ratings=point,
        lower=np.quantile(samples, alpha / 2, axis=0),
        upper=np.quantile(samples, 1 - alpha / 2, axis=0),
        rounds=rounds,
    )
