"""Active sampling spends the same vote budget better than uniform sampling.

Simulation: twelve models with true Bradley–Terry strengths; eight share a history of 2000
battles, four are new. Each strategy then gets the same budget of battles, drawn by its
sampler and decided by the true BT probabilities; the leaderboard (arena.ratings, sandwich
intervals) is refit every ``REFIT`` battles and fed back to the active sampler. After the
budget we compare the 95% CI widths of the ratings.
"""

from __future__ import annotations

import numpy as np
import pytest

from arena.battles.pair_sampler import LeaderboardSnapshot, PairSampler, SamplerConfig
from arena.providers.registry import ModelSpec

try:
    from arena.ratings import Battles, sandwich_intervals
except ImportError:  # the package root may not re-export yet
    from arena.ratings.battles import Battles
    from arena.ratings.intervals import sandwich_intervals

K, NEW, WARMUP, BUDGET, REFIT = 12, 4, 2000, 800, 50


def _leaderboard(a, b, winner):
    """Fit the leaderboard the way the arena does: BT ratings, sandwich covariance."""
    battles = Battles.from_columns(a, b, winner)
    intervals = sandwich_intervals(battles)
    counts = np.zeros((len(battles.models),) * 2)
    np.add.at(counts, (battles.model_a, battles.model_b), 1)
    counts = counts + counts.T
    return battles.models, intervals, counts


def _simulate(mode: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    strength = rng.normal(0.0, 1.0, K)  # natural-log units
    names = [f"model-{i:02d}" for i in range(K)]
    specs = [ModelSpec(name=n, provider="demo") for n in names]
    a: list[str] = []
    b: list[str] = []
    winner: list[str] = []

    def play(i: int, j: int) -> None:
        p = 1.0 / (1.0 + np.exp(strength[j] - strength[i]))
        a.append(names[i])
        b.append(names[j])
        winner.append("model_a" if rng.random() < p else "model_b")

    for _ in range(WARMUP):
        i, j = rng.choice(K - NEW, 2, replace=False)
        play(int(i), int(j))

    # "weighted" with equal registry weights and no targets is uniform over pairs.
    sampler = PairSampler(specs, SamplerConfig(mode=mode))
    index = {n: i for i, n in enumerate(names)}
    snapshot = None
    for t in range(BUDGET):
        if mode == "active" and t % REFIT == 0:
            models, intervals, counts = _leaderboard(a, b, winner)
            snapshot = LeaderboardSnapshot(models, intervals.covariance, counts)
        pair = sampler.sample(rng, snapshot=snapshot)
        play(index[pair.left], index[pair.right])

    models, intervals, _ = _leaderboard(a, b, winner)
    assert set(models) == set(names)
    return np.asarray(intervals.upper - intervals.lower)


@pytest.mark.slow
def test_active_sampling_shrinks_intervals_faster_than_uniform():
    seeds = range(6)
    uniform = np.array([_simulate("weighted", s) for s in seeds])
    active = np.array([_simulate("active", s) for s in seeds])
    uni_max, act_max = uniform.max(axis=1).mean(), active.max(axis=1).mean()
    uni_mean, act_mean = uniform.mean(), active.mean()
    print(
        f"max CI width uniform {uni_max:.1f} active {act_max:.1f}; "
        f"mean uniform {uni_mean:.1f} active {act_mean:.1f}"
    )
    # The widest interval (a newcomer's) closes clearly faster ...
    assert act_max < 0.9 * uni_max
    # ... and the average interval is no wider.
    assert act_mean < 0.95 * uni_mean
