"""Style-control bootstrap rounds: the batched float32 chord lands on each resample's exact
optimum, for both tie models, with weights and ridges."""

from __future__ import annotations

import numpy as np
import pytest

from arena.ratings import Battles, style_bootstrap
from arena.ratings.battles import comparison_components
from arena.ratings.bradley_terry import _newton, centring_matrix, resample_setup
from arena.ratings.style_bootstrap import _fit_resample, _round_counts, bootstrap_rounds
from arena.ratings.style_control import normalize_features
from arena.ratings.style_rows import _objective, _sorted_rows
from ratings.simulate import STYLE_NAMES, simulate_style_battles


def style_rows(n_models, n_battles, seed, *, ties, weighted):
    a, b, w, fa, fb, _, _ = simulate_style_battles(n_models, n_battles, seed=seed)
    rng = np.random.default_rng(seed)
    tie = rng.random(n_battles) < 0.25
    w = np.where(tie, "tie", w)
    weights = rng.uniform(0.5, 2.0, n_battles) if weighted else None
    battles = Battles.from_columns(
        a, b, w, weights=weights, features_a=fa, features_b=fb, feature_names=STYLE_NAMES
    )
    x, _, _ = normalize_features(battles, "reference")
    rows = _sorted_rows(battles, battles.effective_weights(), x)
    return battles, rows


@pytest.mark.parametrize(
    "ties, weighted, ridge_t, ridge_c, float32",
    [
        ("half", False, 0.0, 0.0, False),
        ("half", True, 0.01, 40.0, False),
        ("davidson", True, 0.0, 0.0, False),
        ("half", True, 0.0, 0.0, True),
        ("davidson", False, 0.0, 0.0, True),
    ],
)
def test_rounds_match_exact_newton_on_the_same_resample(
    ties, weighted, ridge_t, ridge_c, float32, monkeypatch
):
    """float64 passes (small data) land within 5e-6 log units (0.001 rating points) of the
    exact optimum; float32 passes (large data, forced here on small data, where their
    rounding weighs most) within 1e-5."""
    if float32:
        monkeypatch.setattr(style_bootstrap, "_FLOAT32_MIN_ROWS", 0)
    battles, rows = style_rows(7, 6000, 3, ties=ties, weighted=weighted)
    n, k = battles.n_models, rows.n_features
    size = n + k + (ties == "davidson")
    fix = np.zeros((size, size))
    labels = comparison_components(n, rows.block_a, rows.block_b)
    if ridge_t == 0:
        fix[:n, :n] = centring_matrix(labels)
    func = _objective(rows, ridge_t, ridge_c, ties=ties)
    params, _, gmax, hess = _newton(func, np.zeros(size), fix)
    assert gmax < 1e-8
    inv = np.linalg.inv(hess + fix)
    rounds, seed = 12, 7
    boot = bootstrap_rounds(
        rows, params, inv, ridge_t, ridge_c, ties=ties, rounds=rounds, seed=seed, n_jobs=2
    )
    assert boot.failed == 0 and boot.regularized == 0
    seeds = np.random.SeedSequence(seed).spawn(rounds)
    for r in range(rounds):
        counts = _round_counts(seeds[r], len(rows.y)).astype(float)
        assert counts.sum() == len(rows.y)
        cw = counts * rows.w
        i_mass = rows.block_sum(cw * (rows.y > 0))
        j_mass = rows.block_sum(cw * (rows.y < 1))
        _, fix_t, lacks = resample_setup(n, rows.block_a, rows.block_b, i_mass, j_mass, ridge_t)
        exact, converged, _ = _fit_resample(rows, cw, params, ridge_t, ridge_c, ties, fix_t, lacks)
        assert converged and not lacks
        # The round moved well away from the full-data fit, onto its own optimum.
        assert np.abs(exact - params).max() > 0.01
        np.testing.assert_allclose(boot.params[r], exact, atol=1e-5 if float32 else 5e-6)


def test_rounds_do_not_depend_on_threads():
    _, rows = style_rows(5, 3000, 4, ties="half", weighted=False)
    n, k = rows.n_models, rows.n_features
    fix = np.zeros((n + k, n + k))
    fix[:n, :n] = centring_matrix(comparison_components(n, rows.block_a, rows.block_b))
    params, _, _, hess = _newton(_objective(rows, 0.0, 0.0), np.zeros(n + k), fix)
    inv = np.linalg.inv(hess + fix)
    runs = [
        bootstrap_rounds(rows, params, inv, 0.0, 0.0, ties="half", rounds=70, seed=1, n_jobs=j)
        for j in (1, 3)
    ]
    np.testing.assert_array_equal(runs[0].params, runs[1].params)
    # Within one block of rounds, each round is its own resample.
    assert len({tuple(np.round(p, 12)) for p in runs[0].params}) == 70
