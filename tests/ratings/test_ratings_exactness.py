"""The fit is the maximum-likelihood optimum, whatever the data layout or row order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arena.ratings import Battles, fit_bradley_terry, sandwich_intervals
from ratings.simulate import simulate_battles

ALPHA = 400 / math.log(10)


def independent_newton(battles: Battles, weights=None) -> np.ndarray:
    """Per-battle Newton solve with a dense design and a pseudo-inverse, written apart
    from the package: ties are one half win for each side."""
    n, k = battles.n_battles, battles.n_models
    x = np.zeros((n, k))
    x[np.arange(n), battles.model_a] = 1.0
    x[np.arange(n), battles.model_b] = -1.0
    y = np.select([battles.outcome == 0, battles.outcome == 1], [1.0, 0.0], 0.5)
    w = np.ones(n) if weights is None else weights
    theta = np.zeros(k)
    for _ in range(100):
        p = 1 / (1 + np.exp(-x @ theta))
        grad = x.T @ (w * (y - p))
        hess = x.T @ (x * (w * p * (1 - p))[:, None])
        step = np.linalg.pinv(hess) @ grad
        theta += step
        if np.abs(step).max() < 1e-13:
            break
    return 1000 + ALPHA * (theta - theta.mean())


def gradient_at(battles: Battles, ratings: np.ndarray) -> np.ndarray:
    theta = (ratings - 1000) / ALPHA
    y = np.select([battles.outcome == 0, battles.outcome == 1], [1.0, 0.0], 0.5)
    p = 1 / (1 + np.exp(-(theta[battles.model_a] - theta[battles.model_b])))
    r = y - p
    k = battles.n_models
    return np.bincount(battles.model_a, r, k) - np.bincount(battles.model_b, r, k)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_independent_newton_and_gradient_vanishes(seed):
    a, b, w, _ = simulate_battles(12, 3000, seed=seed, tie_rate=0.25)
    battles = Battles.from_columns(a, b, w)
    fit = fit_bradley_terry(battles)
    assert np.abs(fit.ratings - independent_newton(battles)).max() < 0.01
    assert np.abs(gradient_at(battles, fit.ratings)).max() < 1e-8
    assert fit.max_abs_gradient < 1e-8


def test_sparse_comparison_graph_reaches_the_optimum():
    # A chain-like graph: each model meets only its neighbours, few battles per pair.
    k = 30
    rng = np.random.default_rng(5)
    theta = np.linspace(-2, 2, k)
    a = np.repeat(np.arange(k - 1), 12)
    b = a + 1
    a, b = np.r_[a, np.arange(k - 2)], np.r_[b, np.arange(2, k)]
    p = 1 / (1 + np.exp(-(theta[a] - theta[b])))
    win = np.where(rng.random(len(a)) < p, "model_a", "model_b")
    labels = np.array([f"m{i:02d}" for i in range(k)])
    battles = Battles.from_columns(labels[a], labels[b], win)
    fit = fit_bradley_terry(battles)
    assert fit.warnings == ()
    assert np.abs(fit.ratings - independent_newton(battles)).max() < 0.01
    assert np.abs(gradient_at(battles, fit.ratings)).max() < 1e-8


def test_aggregated_equals_per_battle_and_weights_equal_duplicates():
    a, b, w, _ = simulate_battles(8, 800, seed=3, tie_rate=0.2)
    once = Battles.from_columns(a, b, w, weights=np.full(len(a), 2.0))
    twice = Battles.from_columns(np.r_[a, a], np.r_[b, b], np.r_[w, w])
    np.testing.assert_allclose(
        fit_bradley_terry(once).ratings, fit_bradley_terry(twice).ratings, atol=1e-9
    )
    weights = np.random.default_rng(0).uniform(0.2, 3, len(a))
    weighted = Battles.from_columns(a, b, w, weights=weights)
    assert (
        np.abs(fit_bradley_terry(weighted).ratings - independent_newton(weighted, weights)).max()
        < 0.01
    )


def test_row_order_and_side_swaps_do_not_matter():
    a, b, w, _ = simulate_battles(10, 1500, seed=4, tie_rate=0.2)
    base = fit_bradley_terry(Battles.from_columns(a, b, w))
    perm = np.random.default_rng(1).permutation(len(a))
    shuffled = fit_bradley_terry(Battles.from_columns(a[perm], b[perm], w[perm]))
    np.testing.assert_allclose(base.ratings, shuffled.ratings, atol=1e-9)
    flipped_w = np.select([w == "model_a", w == "model_b"], ["model_b", "model_a"], w)
    swapped = fit_bradley_terry(Battles.from_columns(b, a, flipped_w))
    np.testing.assert_allclose(base.ratings, swapped.ratings, atol=1e-9)
    s1 = sandwich_intervals(Battles.from_columns(a, b, w))
    s2 = sandwich_intervals(Battles.from_columns(a[perm], b[perm], w[perm]))
    np.testing.assert_allclose(s1.lower, s2.lower, atol=1e-9)


def test_davidson_fit_is_the_optimum():
    a, b, w, _ = simulate_battles(6, 2000, seed=6, tie_rate=0.3)
    battles = Battles.from_columns(a, b, w)
    fit = fit_bradley_terry(battles, ties="davidson")
    theta = (fit.ratings - 1000) / ALPHA
    nu = fit.tie_param
    assert 0 < nu < 10
    outcome = np.minimum(battles.outcome, 2)  # both tie kinds are ties

    def loglik(th, log_nu):
        d = th[battles.model_a] - th[battles.model_b]
        z = np.exp(d / 2) + np.exp(-d / 2) + np.exp(log_nu)
        num = np.select([outcome == 0, outcome == 1], [d / 2, -d / 2], log_nu)
        return np.sum(num - np.log(z))

    best = loglik(theta, math.log(nu))
    rng = np.random.default_rng(0)
    for _ in range(20):  # any small move lowers the likelihood
        assert loglik(theta + rng.normal(0, 1e-3, len(theta)), math.log(nu)) < best
        assert loglik(theta, math.log(nu) + rng.normal(0, 1e-3)) < best
    # ties carry no strength information here, so strengths agree with the half-win fit
    half = fit_bradley_terry(battles)
    assert np.corrcoef(half.ratings, fit.ratings)[0, 1] > 0.999


def test_inverse_propensity_weights_undo_uneven_pair_sampling():
    k = 6
    pairs = k * (k - 1)
    probs = np.ones(pairs)
    probs[:4] = 60.0  # a few ordered pairs sampled far more often
    probs /= probs.sum()
    a, b, w, _ = simulate_battles(k, 20000, seed=8, pair_probs=probs)
    battles = Battles.from_columns(a, b, w)
    plain = fit_bradley_terry(battles)
    ipw = fit_bradley_terry(battles, reweight="ipw")
    weights = battles.effective_weights("ipw")
    assert abs(weights.mean() - 1) < 1e-12
    assert np.abs(ipw.ratings - independent_newton(battles, weights)).max() < 0.01
    assert np.abs(ipw.ratings - plain.ratings).max() > 0.0
