"""Bradley–Terry with additive groups (player + model + prompt)."""

from __future__ import annotations

import numpy as np
import pytest

from arena.ratings import (
    Battles,
    DegenerateComparisonError,
    fit_bradley_terry,
    fit_grouped_bradley_terry,
    sandwich_intervals,
)
from ratings.simulate import simulate_battles


def test_single_group_equals_plain_bradley_terry():
    a, b, w, _ = simulate_battles(7, 3000, seed=1, tie_rate=0.2)
    grouped = fit_grouped_bradley_terry({"model": a}, {"model": b}, w)
    plain = sandwich_intervals(Battles.from_columns(a, b, w))
    got = grouped.groups["model"]
    np.testing.assert_allclose(got.ratings, plain.ratings, atol=1e-8)
    np.testing.assert_allclose(got.lower, plain.lower, atol=1e-6)


def test_red_team_layout_recovers_players_models_and_prompts():
    rng = np.random.default_rng(3)
    n = 30000
    player_s = rng.normal(0, 0.7, 12)
    model_s = rng.normal(0, 0.7, 6)
    prompt_s = rng.normal(0, 0.5, 20)
    p, m, q = rng.integers(0, 12, n), rng.integers(0, 6, n), rng.integers(0, 20, n)
    # The player wins when the model is broken: player strength against model + prompt.
    logit = player_s[p] - (model_s[m] + prompt_s[q])
    win = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "model_a", "model_b")
    fit = fit_grouped_bradley_terry(
        {"player": np.char.add("p", p.astype(str))},
        {"model": np.char.add("m", m.astype(str)), "prompt": np.char.add("q", q.astype(str))},
        win,
        scale=1.0,
        base=np.e,
        init_rating=0.0,
    )
    assert fit.warnings == ()
    for name, truth, idx in (
        ("player", player_s, p),
        ("model", model_s, m),
        ("prompt", prompt_s, q),
    ):
        got = fit.groups[name]
        order = np.argsort([int(label[1:]) for label in got.labels])
        est = got.ratings[order]
        # Only differences within a group are identified: compare centred values.
        assert np.corrcoef(est, truth)[0, 1] > 0.97, name
        assert np.unique(idx).size == len(est)
        covered = got.lower[order] - got.ratings[order] <= truth - truth.mean() - est + est.mean()
        assert covered.mean() > 0.5


def test_grouped_degenerate_is_flagged():
    with pytest.raises(DegenerateComparisonError):
        fit_grouped_bradley_terry(
            {"model": ["a", "a"]},
            {"model": ["b", "b"]},
            ["model_a", "model_a"],
            on_degenerate="raise",
        )
    fit = fit_grouped_bradley_terry({"model": ["a", "a"]}, {"model": ["b", "b"]}, ["model_a"] * 2)
    assert fit.warnings and np.isfinite(fit.groups["model"].ratings).all()
    plain = fit_bradley_terry(Battles.from_columns(["a", "a"], ["b", "b"], ["model_a"] * 2))
    np.testing.assert_allclose(fit.groups["model"].ratings, plain.ratings, atol=1e-6)


def test_a_member_that_only_loses_is_seen_before_fitting():
    """A player who lost every round has no finite strength: the fit says so and uses its
    ridge straight away, with the boards a divergent fit would have ended at."""
    from arena.ratings.grouped import one_sided_members

    rng = np.random.default_rng(3)
    players = rng.choice(["ann", "bo", "cy"], 600).tolist()
    models = rng.choice(["m1", "m2", "m3"], 600).tolist()
    wins = rng.random(600) < 0.4
    players += ["dee"] * 5
    models += ["m1"] * 5
    winner = ["model_a" if w else "model_b" for w in wins] + ["model_b"] * 5
    fit = fit_grouped_bradley_terry({"player": players}, {"model": models}, winner)
    assert fit.warnings and fit.ridge > 0
    assert fit.groups["player"].labels[int(np.argmin(fit.groups["player"].ratings))] == "dee"
    assert np.isfinite(fit.groups["player"].ratings).all()
    with pytest.raises(DegenerateComparisonError):
        fit_grouped_bradley_terry(
            {"player": players}, {"model": models}, winner, on_degenerate="raise"
        )
    # Without dee every member both won and lost: a plain fit, no ridge.
    clean = fit_grouped_bradley_terry({"player": players[:600]}, {"model": models[:600]},
                                      winner[:600])  # fmt: skip
    assert not clean.warnings and clean.ridge == 0
    # Ties are not one-sided results.
    from scipy.sparse import csr_matrix

    x = csr_matrix(np.array([[1.0, -1.0], [1.0, -1.0]]))
    never_lost, never_won = one_sided_members(x, np.array([0.5, 1.0]), np.ones(2))
    assert not never_lost.any() and not never_won.any()
    never_lost, never_won = one_sided_members(x, np.array([1.0, 1.0]), np.ones(2))
    assert never_lost.tolist() == [True, False] and never_won.tolist() == [False, True]


def test_a_one_sided_member_has_an_interval_open_on_that_side():
    """The ridge keeps dee's rating finite; the data bound it from above but not below."""
    rng = np.random.default_rng(4)
    players = rng.choice(["ann", "bo", "cy"], 400).tolist() + ["dee"] * 3
    models = rng.choice(["m1", "m2"], 403).tolist()
    winner = ["model_a" if w else "model_b" for w in rng.random(400) < 0.5] + ["model_b"] * 3
    fit = fit_grouped_bradley_terry({"player": players}, {"model": models}, winner)
    group = fit.groups["player"]
    dee = group.labels.index("dee")
    assert group.lower[dee] == -np.inf and np.isfinite(group.upper[dee])
    assert np.isfinite(group.ratings).all()
    others = [i for i in range(len(group.labels)) if i != dee]
    assert np.isfinite(group.lower[others]).all() and np.isfinite(group.upper[others]).all()
    assert np.isfinite(fit.groups["model"].lower).all()
    assert "unbounded on the side the data leave open" in fit.warnings[0]
