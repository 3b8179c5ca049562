"""Known answers: Wikipedia's Bradley–Terry example and hand-computed Elo updates."""

from __future__ import annotations

import math

import numpy as np

from arena.ratings import Battles, compute_elo, fit_bradley_terry

# Wikipedia, "Bradley–Terry model", worked example: four teams, 22 games; entry [i][j] is
# the number of times team i beat team j. The article's fitted strengths (normalized to a
# geometric mean of 1) are about 0.640, 1.043, 0.660 and 2.270.
WIKIPEDIA_WINS = [
    [0, 2, 0, 1],
    [3, 0, 5, 0],
    [0, 3, 0, 1],
    [4, 0, 3, 0],
]


def wikipedia_battles() -> Battles:
    a, b = [], []
    for i, row in enumerate(WIKIPEDIA_WINS):
        for j, wins in enumerate(row):
            a += ["ABCD"[i]] * wins
            b += ["ABCD"[j]] * wins
    return Battles.from_columns(a, b, ["model_a"] * len(a))


def test_wikipedia_example_natural_log_scale():
    battles = wikipedia_battles()
    assert battles.n_battles == 22
    fit = fit_bradley_terry(battles, scale=1.0, base=math.e, init_rating=0.0)
    assert abs(fit.ratings.mean()) < 1e-12
    np.testing.assert_allclose(np.exp(fit.ratings), [0.640, 1.043, 0.660, 2.270], atol=5e-4)
    assert fit.warnings == ()


def test_wikipedia_example_default_scale_is_a_linear_map():
    battles = wikipedia_battles()
    natural = fit_bradley_terry(battles, scale=1.0, base=math.e, init_rating=0.0).ratings
    default = fit_bradley_terry(battles).ratings
    np.testing.assert_allclose(default, 1000 + natural * 400 / math.log(10), atol=1e-9)
    assert abs(default.mean() - 1000) < 1e-9


def test_wikipedia_example_with_anchor():
    fit = fit_bradley_terry(wikipedia_battles(), anchor=("A", 800.0))
    assert fit.ratings[0] == 800.0
    free = fit_bradley_terry(wikipedia_battles()).ratings
    np.testing.assert_allclose(fit.ratings - free, 800.0 - free[0])


def test_elo_matches_hand_computed_updates():
    elo = compute_elo(["x", "x", "y"], ["y", "z", "z"], ["model_a", "tie", "model_b"])
    r = {"x": 1000.0, "y": 1000.0, "z": 1000.0}

    def update(a, b, s):
        e = 1 / (1 + 10 ** ((r[b] - r[a]) / 400))
        r[a], r[b] = r[a] + 4 * (s - e), r[b] - 4 * (s - e)

    update("x", "y", 1.0)
    update("x", "z", 0.5)
    update("y", "z", 0.0)
    assert elo.as_dict() == r


def test_elo_sorts_by_timestamp_stably():
    a, b, w = ["p", "q", "p"], ["q", "p", "q"], ["model_a", "model_a", "tie"]
    in_order = compute_elo([a[1], a[0], a[2]], [b[1], b[0], b[2]], [w[1], w[0], w[2]])
    by_time = compute_elo(a, b, w, tstamp=[5.0, 1.0, 5.0])
    np.testing.assert_array_equal(in_order.ratings, by_time.ratings)
    custom = compute_elo(["p"], ["q"], ["model_a"], k=32, init_rating=1500)
    assert custom.as_dict() == {"p": 1516.0, "q": 1484.0}
