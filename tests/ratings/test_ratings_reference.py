"""Agreement with the public reference implementation, arena-rank (PyPI ``arena-rank``).

The bar for our fits is the exact optimum (see test_ratings_exactness); here we check that
where arena-rank converges we agree with it, and measure where it stops short.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from arena_rank.models.bradley_terry import BradleyTerry
from arena_rank.models.contextual_bradley_terry import ContextualBradleyTerry
from arena_rank.utils.data_utils import ContextualPairDataset, PairDataset

from arena.ratings import Battles, fit_bradley_terry, fit_style_control, sandwich_intervals
from ratings.simulate import simulate_battles, simulate_style_battles

ALPHA = 400 / math.log(10)


def reference_plain(a, b, w) -> dict:
    frame = pd.DataFrame({"model_a": a, "model_b": b, "winner": w})
    # arena-rank spells the second tie "both_bad"; it maps unknown values to 0.5 as well.
    frame["winner"] = frame["winner"].replace({"tie (bothbad)": "both_bad"})
    data = PairDataset.from_pandas(frame)
    model = BradleyTerry(n_competitors=len(data.competitors))
    out = model.compute_ratings_and_cis(data, significance_level=0.05)
    return {k: (list(v) if k == "competitors" else np.asarray(v)) for k, v in out.items()}


def test_plain_ratings_and_sandwich_intervals_agree():
    a, b, w, _ = simulate_battles(12, 30000, seed=11, tie_rate=0.2)
    ref = reference_plain(a, b, w)
    ours = sandwich_intervals(Battles.from_columns(a, b, w))
    assert ref["competitors"] == list(ours.models)
    assert np.abs(ref["ratings"] - ours.ratings).max() < 0.01
    assert np.abs(ref["rating_lower"] - ours.lower).max() < 0.01
    assert np.abs(ref["rating_upper"] - ours.upper).max() < 0.01


def test_style_controlled_ratings_agree_with_reference_settings():
    a, b, w, fa, fb, _, _ = simulate_style_battles(10, 20000, seed=12)
    names = ["tokens", "headers", "lists", "bold"]
    frame = pd.DataFrame({"model_a": a, "model_b": b, "winner": w})
    total = fa + fb
    raw = (fa - fb) / np.where(total == 0, 1.0, total)
    for i, name in enumerate(names):
        frame[name] = (raw[:, i] - raw[:, i].mean()) / raw[:, i].std(ddof=1)
    data = ContextualPairDataset.from_pandas(frame, feature_cols=names)
    model = ContextualBradleyTerry(n_competitors=len(data.competitors), n_features=len(names))
    ref = model.compute_ratings_and_cis(data, significance_level=0.05)
    battles = Battles.from_columns(a, b, w, features_a=fa, features_b=fb, feature_names=names)
    # arena-rank's defaults: inverse-propensity weights and an L2 penalty of 1 on the
    # coefficients of its mean loss.
    ours = fit_style_control(
        battles, ci="sandwich", reweight="ipw", coef_ridge=1.0, compare_plain=False
    )
    assert list(ref["competitors"]) == list(ours.models)
    assert np.abs(np.asarray(ref["ratings"]) - ours.ratings).max() < 0.1
    np.testing.assert_allclose(
        np.asarray(ref["coeffs"]), [ours.coefficients[n] for n in names], atol=1e-3
    )


def test_sparse_graph_reference_stops_short_of_the_optimum():
    # Few battles per pair on a sparse graph: the reference's L-BFGS stops on a flat
    # objective, our Newton solve reaches the optimum (likelihood at least as high).
    k = 40
    rng = np.random.default_rng(13)
    theta = np.linspace(-2.5, 2.5, k)
    a = np.concatenate([np.arange(k - 1), np.arange(k - 3), rng.integers(0, k, 60)])
    b = np.concatenate([np.arange(1, k), np.arange(3, k), rng.integers(0, k, 60)])
    keep = a != b
    a, b = np.repeat(a[keep], 6), np.repeat(b[keep], 6)
    p = 1 / (1 + np.exp(-(theta[a] - theta[b])))
    win = np.where(rng.random(len(a)) < p, "model_a", "model_b")
    labels = np.array([f"m{i:02d}" for i in range(k)])
    battles = Battles.from_columns(labels[a], labels[b], win)
    ours = fit_bradley_terry(battles)
    assert ours.warnings == () and ours.max_abs_gradient < 1e-8
    ref = reference_plain(labels[a], labels[b], win)

    def loglik(ratings):
        t = (ratings - 1000) / ALPHA
        d = t[battles.model_a] - t[battles.model_b]
        y = (battles.outcome == 0).astype(float)
        return np.sum(y * d - np.logaddexp(0, d))

    assert loglik(ours.ratings) >= loglik(ref["ratings"]) - 1e-9
    gap = np.abs(ref["ratings"] - ours.ratings).max()
    print(f"arena-rank vs optimum on a sparse graph: max |difference| {gap:.4f} rating points")
    assert gap < 5.0
