"""Degenerate battle sets get honest intervals: known answers for each case.

Ties only, one tie, one win, one battle, a chain of results, a disconnected graph: the
interval says what the battles cannot support (an unbounded side, a model-based width)
instead of inventing certainty.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import logit

from arena import ratings
from arena.ratings import Battles
from arena.ratings.battles import aggregate
from arena.ratings.evidence import ordered_parts, separation, without_decisive_battle

ALPHA = 400 / math.log(10)
Z = float(stats.norm.ppf(0.975))
INTERVALS = [
    pytest.param(ratings.sandwich_intervals, {}, id="sandwich"),
    pytest.param(ratings.bootstrap_intervals, {"rounds": 2000}, id="bootstrap"),
]
# How far a bound may move when one battle is added: the sandwich is deterministic; a
# bootstrap draws a different stream of resamples (2000 rounds: a point or two of noise).
BOUND_NOISE = {"sandwich": 0.5, "bootstrap": 4.0}


def battles(rows: list[tuple[str, str, str]]) -> Battles:
    a, b, w = zip(*rows, strict=True)
    return Battles.from_columns(np.array(a), np.array(b), np.array(w))


def balanced_trio(n: int = 300, seed: int = 0) -> list[tuple[str, str, str]]:
    """Three models in a cycle of even, well-measured battles."""
    rng = np.random.default_rng(seed)
    nxt = {"m1": "m2", "m2": "m3", "m3": "m1"}
    firsts = rng.choice(list(nxt), n)
    outcomes = rng.choice(["model_a", "model_b", "tie"], n)
    return [(a, nxt[a], w) for a, w in zip(firsts, outcomes, strict=True)]


def by_model(result) -> dict[str, tuple[float, float, float]]:
    return {
        m: (float(r), float(lo), float(hi))
        for m, r, lo, hi in zip(
            result.models, result.ratings, result.lower, result.upper, strict=True
        )
    }


@pytest.mark.parametrize(("interval", "kwargs"), INTERVALS)
def test_ties_only_get_the_model_based_width_not_zero(interval, kwargs):
    # Three models, one tie per pair: the Fisher information of each battle is 1/4, so the
    # centred variance of a strength is (2/3)/(3/4) log-odds²: about ±321 points at 95%.
    result = interval(battles([("a", "b", "tie"), ("b", "c", "tie"), ("a", "c", "tie")]), **kwargs)
    expected = Z * math.sqrt((2 / 3) / 0.75) * ALPHA
    for rating, lower, upper in by_model(result).values():
        assert rating == pytest.approx(1000.0)
        assert upper - rating == pytest.approx(expected, rel=1e-9)
        assert rating - lower == pytest.approx(expected, rel=1e-9)
    assert any("only tied battles" in w for w in result.warnings)


@pytest.mark.parametrize(("interval", "kwargs"), INTERVALS)
def test_a_single_tie_does_not_copy_the_opponents_interval(interval, kwargs):
    rows = [*balanced_trio(), ("x", "m1", "tie")]
    got = by_model(interval(battles(rows), **kwargs))
    x_rating, x_lower, x_upper = got["x"]
    m1_rating, m1_lower, m1_upper = got["m1"]
    assert x_rating == pytest.approx(m1_rating)
    # One battle of information 1/4: the gap to m1 has a standard error near 2 log-odds,
    # and x carries 3/4 of it after centring on four models (~511 points at 95%).
    assert x_upper - x_lower > 10 * (m1_upper - m1_lower)
    assert x_upper - x_rating == pytest.approx(Z * 1.5 * ALPHA, rel=0.05)


@pytest.mark.parametrize(("interval", "kwargs"), INTERVALS)
def test_one_win_leaves_the_upper_bound_open_and_moves_no_one(interval, kwargs):
    base = by_model(interval(battles(balanced_trio()), **kwargs))
    got = by_model(interval(battles([*balanced_trio(), ("x", "m1", "model_a")]), **kwargs))
    _x_rating, x_lower, x_upper = got["x"]
    assert math.isinf(x_upper) and x_upper > 0
    # Finite side: where the likelihood ratio to its supremum reaches z²/2 with m1 fixed,
    # log σ((t - r_m1)/α) = -z²/2.
    expected_lower = got["m1"][0] + ALPHA * logit(math.exp(-Z * Z / 2))
    assert x_lower == pytest.approx(expected_lower, abs=1e-6)
    for m in ("m1", "m2", "m3"):
        # The runaway model shifts nobody: ratings within a tenth of a point (the ridge), bounds
        # within bootstrap noise of the data without it.
        assert got[m][0] == pytest.approx(base[m][0], abs=0.1)
        noise = BOUND_NOISE[interval.__name__.split("_")[0]]
        assert got[m][1] == pytest.approx(base[m][1], abs=noise)
        assert got[m][2] == pytest.approx(base[m][2], abs=noise)


@pytest.mark.parametrize(("interval", "kwargs"), INTERVALS)
def test_a_single_battle_is_not_estimable(interval, kwargs):
    got = by_model(interval(battles([("a", "b", "model_a")]), **kwargs))
    for _, lower, upper in got.values():
        assert lower == -math.inf and upper == math.inf


def test_never_won_group_is_open_below_and_a_chain_is_classified_by_the_reference():
    trio = balanced_trio()
    rows = [*trio, ("m1", "y", "model_a"), ("m2", "y", "model_a"), ("y", "z", "model_a")]
    table = aggregate(battles(rows))
    sep = separation(table)
    index = {m: i for i, m in enumerate(battles(rows).models)}
    assert sep.below[index["y"]] and not sep.above[index["y"]]
    assert sep.below[index["z"]] and not sep.above[index["z"]]
    for m in ("m1", "m2", "m3"):
        assert not sep.below[index[m]] and not sep.above[index[m]] and sep.reference[index[m]]


def test_parts_are_numbered_by_size_and_ties_only_models_found():
    rows = [*balanced_trio(), ("p", "q", "model_a"), ("q", "p", "model_a"), ("s", "m1", "tie")]
    bt = battles(rows)
    table = aggregate(bt)
    parts = dict(
        zip(bt.models, ordered_parts(bt.n_models, table.pair_i, table.pair_j), strict=True)
    )
    assert parts["m1"] == parts["s"] == 1 and parts["p"] == parts["q"] == 2
    ties_only = dict(zip(bt.models, without_decisive_battle(table), strict=True))
    assert ties_only["s"] and not ties_only["m1"] and not ties_only["p"]


def test_davidson_gets_the_same_limits():
    rows = [*balanced_trio(), ("x", "m1", "model_a"), ("x", "m2", "model_a")]
    got = by_model(ratings.sandwich_intervals(battles(rows), ties="davidson"))
    assert math.isinf(got["x"][2]) and math.isfinite(got["x"][1])
    assert all(math.isfinite(v) for m in ("m1", "m2", "m3") for v in got[m])


@pytest.mark.parametrize("ci", ["sandwich", "bootstrap"])
def test_style_control_gets_the_same_limits(ci):
    rows = balanced_trio(600)
    with_x = [*rows, ("x", "m1", "model_a"), ("t", "m2", "tie")]

    def fit(data):
        a, b, w = (np.array(col) for col in zip(*data, strict=True))
        # Row by row the same features in both fits (drawn row-major from one seed).
        tokens = np.random.default_rng(1).integers(50, 500, (len(data), 2)).astype(float)
        bt = Battles.from_columns(
            a, b, w, features_a=tokens[:, :1], features_b=tokens[:, 1:], feature_names=("tokens",)
        )
        return by_model(ratings.fit_style_control(bt, ci=ci, rounds=200, compare_plain=False))

    base, got = fit(rows), fit(with_x)
    assert math.isinf(got["x"][2]) and math.isfinite(got["x"][1])
    tied = got["t"]
    assert tied[2] - tied[1] > 10 * (got["m2"][2] - got["m2"][1])
    # The runaway model moves no gap between the others (the tied model only joins the
    # centring, a common shift).
    for m in ("m2", "m3"):
        assert got[m][0] - got["m1"][0] == pytest.approx(base[m][0] - base["m1"][0], abs=0.1)
