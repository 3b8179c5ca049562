"""Style control: feature conventions, exact fit, recovered effects, ranks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from arena.ratings import (
    Battles,
    fit_bradley_terry,
    fit_style_control,
    normalize_features,
    style_bootstrap,
    style_rows,
)
from arena.ratings.bradley_terry import resample_setup
from ratings.simulate import rare_model_battles, simulate_style_battles

ALPHA = 400 / math.log(10)
NAMES = ["tokens", "headers", "lists", "bold"]


def style_battles(n_models=8, n_battles=6000, seed=0, **kw):
    a, b, w, fa, fb, theta, gamma = simulate_style_battles(n_models, n_battles, seed=seed, **kw)
    battles = Battles.from_columns(a, b, w, features_a=fa, features_b=fb, feature_names=NAMES)
    return battles, theta, gamma


def test_feature_conventions():
    fa = np.array([[10.0, 0.0], [0.0, 0.0], [30.0, 2.0]])
    fb = np.array([[30.0, 0.0], [0.0, 4.0], [10.0, 2.0]])
    battles = Battles.from_columns(
        ["a", "b", "a"], ["b", "a", "b"], ["tie"] * 3, features_a=fa, features_b=fb
    )
    ref, _, _ = normalize_features(battles, "reference")
    raw = np.array([[-0.5, 0.0], [0.0, -1.0], [0.5, 0.0]])  # 0/0 counts as 0
    np.testing.assert_allclose(ref, (raw - raw.mean(0)) / raw.std(0))
    fc, _, _ = normalize_features(battles, "fastchat")
    raw_fc = (fa - fb) / (fa + fb + 1)
    np.testing.assert_allclose(fc, (raw_fc - raw_fc.mean(0)) / raw_fc.std(0))
    none, mean, std = normalize_features(battles, "none")
    np.testing.assert_array_equal(none, fa - fb)
    assert (mean == 0).all() and (std == 1).all()
    given = Battles.from_columns(["a"] * 2, ["b"] * 2, ["tie"] * 2, features=[[1.0], [3.0]])
    np.testing.assert_allclose(normalize_features(given, "reference")[0], [[-1.0], [1.0]])


def test_style_fit_is_the_optimum():
    battles, _, _ = style_battles(n_models=6, n_battles=3000, seed=1)
    fit = fit_style_control(battles, ci="sandwich", compare_plain=False)
    x, _, _ = normalize_features(battles, "reference")
    k = battles.n_models
    y = np.select([battles.outcome == 0, battles.outcome == 1], [1.0, 0.0], 0.5)

    def nll(params):
        d = params[battles.model_a] - params[battles.model_b] + x @ params[k:]
        return np.sum(np.logaddexp(0, d) - y * d)

    def grad(params):
        d = params[battles.model_a] - params[battles.model_b] + x @ params[k:]
        r = y - 1 / (1 + np.exp(-d))
        g = np.zeros(len(params))
        g[:k] = np.bincount(battles.model_a, r, k) - np.bincount(battles.model_b, r, k)
        g[k:] = x.T @ r
        return -g

    ref = minimize(nll, np.zeros(k + 4), jac=grad, method="BFGS", options={"gtol": 1e-10})
    theta = ref.x[:k] - ref.x[:k].mean()
    np.testing.assert_allclose(fit.ratings, 1000 + ALPHA * theta, atol=0.01)
    np.testing.assert_allclose(list(fit.coefficients.values()), ref.x[k:], atol=1e-5)
    ours = np.r_[(fit.ratings - 1000) / ALPHA, list(fit.coefficients.values())]
    assert np.abs(grad(ours)).max() < 1e-7


def test_recovers_style_effects_and_reports_rank_change():
    battles, theta, gamma = style_battles(n_models=8, n_battles=20000, seed=2)
    fit = fit_style_control(battles, ci="sandwich")
    coef = np.array([fit.coefficients[n] for n in NAMES])
    lo = np.array([fit.coefficient_lower[n] for n in NAMES])
    hi = np.array([fit.coefficient_upper[n] for n in NAMES])
    assert np.all(np.abs(coef - gamma) < 4 * (hi - lo) / 3.92)
    plain = fit_bradley_terry(battles)
    np.testing.assert_allclose(fit.plain_ratings, plain.ratings)
    truth = 1000 + ALPHA * (theta - theta.mean())
    assert np.abs(fit.ratings - truth).mean() < np.abs(plain.ratings - truth).mean()
    np.testing.assert_array_equal(fit.rank_change, fit.plain_rank - fit.rank)
    assert fit.feature_names == tuple(NAMES)


def test_bootstrap_style_intervals():
    battles, _, _ = style_battles(n_models=6, n_battles=4000, seed=3)
    boot = fit_style_control(battles, rounds=60, seed=1, n_jobs=2)
    again = fit_style_control(battles, rounds=60, seed=1, n_jobs=1, compare_plain=False)
    np.testing.assert_array_equal(boot.samples, again.samples)
    sand = fit_style_control(battles, ci="sandwich", compare_plain=False)
    np.testing.assert_allclose(boot.ratings, sand.ratings)
    ratio = (boot.upper - boot.lower) / (sand.upper - sand.lower)
    assert np.all(np.abs(ratio - 1) < 0.35), ratio
    for name in NAMES:
        assert boot.coefficient_lower[name] < boot.coefficients[name] < boot.coefficient_upper[name]
    assert boot.plain_rank is not None and boot.rank.shape == (6,)


def test_ridge_shrinks_coefficients_and_options_check():
    battles, _, _ = style_battles(n_models=5, n_battles=3000, seed=4)
    free = fit_style_control(battles, ci="sandwich", compare_plain=False)
    ridged = fit_style_control(battles, ci="sandwich", compare_plain=False, coef_ridge=0.05)
    assert abs(ridged.coefficients["tokens"]) < abs(free.coefficients["tokens"])
    fastchat = fit_style_control(
        battles, ci="sandwich", compare_plain=False, normalization="fastchat"
    )
    assert np.abs(fastchat.ratings - free.ratings).max() < 5
    with pytest.raises(ValueError):
        fit_style_control(battles, normalization="other")
    with pytest.raises(ValueError):
        fit_style_control(battles, ci="jackknife")


def test_constant_and_duplicated_features_do_not_break_the_fit():
    battles, _, _ = style_battles(n_models=5, n_battles=2000, seed=5)
    fa, fb = battles.features_a.copy(), battles.features_b.copy()
    fa[:, 3] = fb[:, 3] = 0.0  # no bold text anywhere
    a = np.array(battles.models)[battles.model_a]
    b = np.array(battles.models)[battles.model_b]
    w = np.array(["model_a", "model_b", "tie", "tie (bothbad)"])[battles.outcome]
    flat = Battles.from_columns(a, b, w, features_a=fa, features_b=fb, feature_names=NAMES)
    fit = fit_style_control(flat, ci="sandwich", compare_plain=False)
    assert fit.coefficients["bold"] == 0.0
    assert any("'bold' is constant" in msg for msg in fit.warnings)
    fa[:, 3], fb[:, 3] = fa[:, 0], fb[:, 0]  # bold duplicates tokens
    dup = Battles.from_columns(a, b, w, features_a=fa, features_b=fb, feature_names=NAMES)
    fit_dup = fit_style_control(dup, ci="sandwich", compare_plain=False)
    assert any("collinear" in msg for msg in fit_dup.warnings)
    assert not any("collinear" in msg for msg in fit.warnings)
    np.testing.assert_allclose(
        fit_dup.coefficients["tokens"] + fit_dup.coefficients["bold"],
        fit.coefficients["tokens"],
        atol=1e-6,
    )
    np.testing.assert_allclose(fit_dup.ratings, fit.ratings, atol=1e-6)


def test_separated_resample_gets_a_finite_fit():
    battles = rare_model_battles()
    rare = battles.n_models - 1
    fit = fit_style_control(battles, ci="sandwich", compare_plain=False)
    x, _, _ = normalize_features(battles, "reference")
    weights = battles.effective_weights(None, 50)
    rows = style_rows._sorted_rows(battles, weights, x)
    # The resample keeps every battle but the rare model's wins: it never wins, so its
    # likelihood alone has no finite optimum.
    rare_side = rows.block_b[np.repeat(np.arange(len(rows.starts)), rows.lengths)] == rare
    rare_won = rare_side & (rows.y < 1.0)
    assert rare_won.any()
    counts = np.where(rare_won, 0, 1)
    params = np.r_[(fit.ratings - 1000) / ALPHA, [fit.coefficients[n] for n in NAMES]]
    i_mass = rows.block_sum(counts * (rows.y > 0))
    j_mass = rows.block_sum(counts * (rows.y < 1))
    _, fix_t, lacks = resample_setup(
        battles.n_models, rows.block_a, rows.block_b, i_mass, j_mass, 0
    )
    assert lacks
    p, converged, regularized = style_bootstrap._fit_resample(
        rows, counts * rows.w, params, 0.0, 0.0, "half", fix_t, lacks
    )
    assert converged and regularized and np.isfinite(p).all()
    # The rare model drops (it lost everything) but stays near the data, and the others
    # stay where their own battles put them.
    assert params[rare] - 3 < p[rare] < params[rare]
    assert np.abs(p[:rare] - params[:rare]).max() < 0.2


def test_bootstrap_with_separated_resamples_agrees_with_sandwich():
    """Issue 10: rounds with no finite optimum used to diverge (a lower bound thousands of
    points below, every upper bound hundreds of points above the sandwich's)."""
    battles = rare_model_battles()
    boot = fit_style_control(battles, rounds=300, seed=0, compare_plain=False)
    sand = fit_style_control(battles, ci="sandwich", compare_plain=False)
    assert any("no finite optimum on their own" in w for w in boot.warnings), boot.warnings
    assert not any("did not converge" in w for w in boot.warnings)
    assert np.isfinite(boot.samples).all()
    n_battles = np.bincount(battles.model_a, minlength=battles.n_models) + np.bincount(
        battles.model_b, minlength=battles.n_models
    )
    big = n_battles >= 1000
    width = sand.upper - sand.lower
    gap = np.maximum(np.abs(boot.lower - sand.lower), np.abs(boot.upper - sand.upper))
    assert np.all(gap[big] < 0.10 * width[big]), gap[big] / width[big]
