"""Style control with Davidson ties: exact optimum, reduction to the plain fit, intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from arena.ratings import Battles, RatingInputError, fit_bradley_terry, fit_style_control
from arena.ratings.battles import aggregate
from arena.ratings.bradley_terry import davidson_objective, davidson_probs
from arena.ratings.style_control import normalize_features
from arena.ratings.style_rows import _objective, _sorted_rows
from ratings.simulate import names, rare_model_battles

ALPHA = 400 / math.log(10)
OUTCOMES = np.array(["model_a", "model_b", "tie"])


def davidson_style_battles(n_models, n_battles, *, seed, gamma=(0.4, -0.2), nu=0.8):
    """Battles from the Davidson model with style: d = θa - θb + xᵀγ, P(tie) ∝ ν.

    ``x`` is given ready-made (standard normal, so standardization barely changes it);
    with ν = 0.8 and this spread about 27% of battles are ties.
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.5, n_models)
    a = rng.integers(0, n_models, n_battles)
    b = (a + rng.integers(1, n_models, n_battles)) % n_models
    x = rng.standard_normal((n_battles, len(gamma)))
    pa, pb, _ = davidson_probs(theta[a] - theta[b] + x @ np.asarray(gamma), math.log(nu))
    u = rng.random(n_battles)
    code = np.where(u < pa, 0, np.where(u < pa + pb, 1, 2))
    labels = names(n_models)
    battles = Battles.from_columns(labels[a], labels[b], OUTCOMES[code], features=x)
    return battles, theta - theta.mean()


def direct_nll_and_grad(battles, x):
    """Negative log-likelihood and gradient over (θ, γ, log ν), straight from the battles."""
    k = battles.n_models
    a, b, o = battles.model_a, battles.model_b, battles.outcome
    ya, yb, yt = (o == 0).astype(float), (o == 1).astype(float), (o >= 2).astype(float)

    def nll(params):
        theta, gamma, tau = params[:k], params[k:-1], params[-1]
        d = theta[a] - theta[b] + x @ gamma
        log_z = np.logaddexp(np.logaddexp(d / 2, -d / 2), tau)
        return -np.sum(ya * d / 2 - yb * d / 2 + yt * tau - log_z)

    def grad(params):
        theta, gamma, tau = params[:k], params[k:-1], params[-1]
        d = theta[a] - theta[b] + x @ gamma
        pa, pb, pt = davidson_probs(d, tau)
        sd = (ya - yb) / 2 - (pa - pb) / 2
        g = np.zeros(len(params))
        g[:k] = np.bincount(a, sd, k) - np.bincount(b, sd, k)
        g[k:-1] = x.T @ sd
        g[-1] = np.sum(yt - pt)
        return -g

    return nll, grad


def test_davidson_style_fit_is_the_optimum():
    battles, _ = davidson_style_battles(6, 3000, seed=11)
    fit = fit_style_control(battles, ci="sandwich", compare_plain=False, ties="davidson")
    x, _, _ = normalize_features(battles, "reference")
    nll, grad = direct_nll_and_grad(battles, x)
    k = battles.n_models
    ours = np.r_[(fit.ratings - 1000) / ALPHA, list(fit.coefficients.values()), fit.tie_param]
    ours[-1] = math.log(ours[-1])
    assert np.abs(grad(ours)).max() < 1e-8
    ref = minimize(nll, np.zeros(k + 3), jac=grad, method="BFGS", options={"gtol": 1e-11})
    ref_params = ref.x.copy()
    ref_params[:k] -= ref_params[:k].mean()
    np.testing.assert_allclose(ours, ref_params, atol=1e-6)
    assert fit.ties == "davidson" and 0.2 < (battles.outcome == 2).mean() < 0.35


def test_reduces_to_plain_davidson_when_gamma_is_zero():
    """At γ = 0 the style likelihood is the plain Davidson likelihood on pair cells."""
    battles, _ = davidson_style_battles(7, 4000, seed=12)
    x, _, _ = normalize_features(battles, "reference")
    rows = _sorted_rows(battles, np.ones(battles.n_battles), x)
    table = aggregate(battles)
    ow = table.outcome_weights()
    plain = davidson_objective(
        battles.n_models, table.pair_i, table.pair_j, ow[0], ow[1], ow[2], 0.0
    )
    style = _objective(rows, 0.0, 0.0, ties="davidson")
    rng = np.random.default_rng(0)
    n = battles.n_models
    for _ in range(3):
        theta, tau = rng.normal(0, 0.5, n), rng.normal(-0.3, 0.3)
        loss_p, grad_p, hess_p = plain(np.r_[theta, tau])
        loss_s, grad_s, hess_s = style(np.r_[theta, 0.0, 0.0, tau])
        keep = np.r_[np.arange(n), n + 2]
        np.testing.assert_allclose(loss_s, loss_p, rtol=1e-12)
        np.testing.assert_allclose(grad_s[keep], grad_p, atol=1e-8)
        np.testing.assert_allclose(hess_s[np.ix_(keep, keep)], hess_p, atol=1e-8)


def test_noise_feature_leaves_plain_davidson_ratings():
    battles, _ = davidson_style_battles(8, 60000, seed=13, gamma=(0.0, 0.0))
    style = fit_style_control(battles, ci="sandwich", ties="davidson")
    plain = fit_bradley_terry(battles, ties="davidson")
    np.testing.assert_allclose(style.plain_ratings, plain.ratings)
    assert np.abs(style.ratings - plain.ratings).max() < 0.3
    assert abs(style.tie_param / plain.tie_param - 1) < 0.002
    assert max(abs(c) for c in style.coefficients.values()) < 0.03


def test_recovers_effects_and_tie_parameter():
    battles, theta = davidson_style_battles(8, 40000, seed=14)
    fit = fit_style_control(battles, ci="sandwich", compare_plain=False, ties="davidson")
    coef = np.array(list(fit.coefficients.values()))
    se = (np.array(list(fit.coefficient_upper.values())) - coef) / 1.96
    # Effects are per standard deviation of the feature as it occurred.
    assert np.all(np.abs(coef - np.array([0.4, -0.2]) * fit.feature_std) < 4 * se)
    assert abs(fit.tie_param - 0.8) < 0.05
    truth = 1000 + ALPHA * theta
    se = (fit.upper - fit.lower) / 3.92
    assert np.all(np.abs(fit.ratings - truth) < 4 * se)
    half = fit_style_control(battles, ci="sandwich", compare_plain=False)
    # Ties as half wins shrink rating differences compared with the Davidson scale.
    assert np.ptp(half.ratings) < np.ptp(fit.ratings)


def test_davidson_bootstrap_agrees_with_sandwich_and_is_seeded():
    battles, _ = davidson_style_battles(6, 5000, seed=15)
    boot = fit_style_control(battles, rounds=80, seed=2, n_jobs=2, ties="davidson")
    again = fit_style_control(
        battles, rounds=80, seed=2, n_jobs=1, ties="davidson", compare_plain=False
    )
    np.testing.assert_array_equal(boot.samples, again.samples)
    sand = fit_style_control(battles, ci="sandwich", compare_plain=False, ties="davidson")
    np.testing.assert_allclose(boot.ratings, sand.ratings)
    ratio = (boot.upper - boot.lower) / (sand.upper - sand.lower)
    assert np.all(np.abs(ratio - 1) < 0.35), ratio
    plain = fit_bradley_terry(battles, ties="davidson")
    np.testing.assert_allclose(boot.plain_ratings, plain.ratings)
    assert not boot.warnings


def test_davidson_needs_ties_and_decisive_battles():
    battles, _ = davidson_style_battles(4, 400, seed=16)
    labels = np.array(battles.models)
    a, b = labels[battles.model_a], labels[battles.model_b]
    x = battles.features
    for winners in (
        np.where(battles.outcome == 1, "model_b", "model_a"),
        np.full(battles.n_battles, "tie"),
    ):
        only = Battles.from_columns(a, b, winners, features=x)
        with pytest.raises(RatingInputError, match="needs both ties and decisive"):
            fit_style_control(only, ci="sandwich", ties="davidson")
    with pytest.raises(RatingInputError, match="ties must be"):
        fit_style_control(battles, ties="rao-kupper")
    assert fit_style_control(battles, ci="sandwich", compare_plain=False).tie_param is None


def test_davidson_bootstrap_with_separated_resamples_stays_finite():
    battles = rare_model_battles(tie_rate=0.25)
    boot = fit_style_control(battles, rounds=200, seed=0, compare_plain=False, ties="davidson")
    sand = fit_style_control(battles, ci="sandwich", compare_plain=False, ties="davidson")
    assert any("no finite optimum on their own" in w for w in boot.warnings), boot.warnings
    assert not any("did not converge" in w for w in boot.warnings)
    assert np.isfinite(boot.samples).all()
    big = np.bincount(np.r_[battles.model_a, battles.model_b]) >= 1000
    width = sand.upper - sand.lower
    gap = np.maximum(np.abs(boot.lower - sand.lower), np.abs(boot.upper - sand.upper))
    assert np.all(gap[big] < 0.12 * width[big]), gap[big] / width[big]
