"""Awkward input gets a clear, typed answer instead of a crash or silent nonsense."""

from __future__ import annotations

import numpy as np
import pytest

from arena.errors import BadRequest
from arena.ratings import (
    Battles,
    DegenerateComparisonError,
    RatingInputError,
    bootstrap_intervals,
    fit_bradley_terry,
    fit_style_control,
    sandwich_intervals,
)


def battles_of(rows):
    a, b, w = zip(*rows, strict=True)
    return Battles.from_columns(list(a), list(b), list(w))


BALANCED = [
    ("x", "y", "model_a"),
    ("y", "x", "model_a"),
    ("y", "z", "model_a"),
    ("z", "y", "model_a"),
    ("x", "z", "tie"),
]


def test_unknown_winner_values_are_named():
    with pytest.raises(RatingInputError) as err:
        Battles.from_columns(["a", "b"], ["b", "c"], ["model_a", "bogus"])
    assert "'bogus'" in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, BadRequest)
    assert err.value.status_code == 400


def test_missing_winner_values_are_rejected():
    with pytest.raises(ValueError, match="None"):
        Battles.from_columns(["a", "b"], ["b", "c"], ["model_a", None])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_a": [], "model_b": [], "winner": []}, "no battles"),
        ({"model_a": ["a"], "model_b": ["a"], "winner": ["tie"]}, "against itself"),
        ({"model_a": ["a", "b"], "model_b": ["b"], "winner": ["tie"]}, "differ in length"),
        (
            {"model_a": ["a"], "model_b": ["b"], "winner": ["tie"], "weights": [-1.0]},
            "non-negative",
        ),
        (
            {"model_a": ["a"], "model_b": ["b"], "winner": ["tie"], "features": [[np.nan]]},
            "NaN",
        ),
    ],
)
def test_bad_columns_raise(kwargs, message):
    with pytest.raises(RatingInputError, match=message):
        Battles.from_columns(**kwargs)


def test_all_zero_weights_are_a_clear_error():
    import dataclasses

    battles = Battles.from_columns(
        model_a=["a", "b"], model_b=["b", "a"], winner=["model_a", "tie"]
    )
    # A selection can leave every weight at 0 (columns given by hand are refused earlier).
    battles = dataclasses.replace(battles, weights=np.zeros(2))
    with pytest.raises(RatingInputError, match="weight 0"):
        fit_bradley_terry(battles)


def test_model_with_only_wins_is_flagged_and_finite():
    battles = battles_of([*BALANCED, ("w", "x", "model_a"), ("y", "w", "model_b")])
    fit = fit_bradley_terry(battles)
    assert any("never lost: w" in msg for msg in fit.warnings)
    assert np.isfinite(fit.ratings).all()
    assert fit.ratings[battles.model_index("w")] == fit.ratings.max()
    with pytest.raises(DegenerateComparisonError, match="never lost: w"):
        fit_bradley_terry(battles, on_degenerate="raise")


def test_model_with_only_losses_is_flagged():
    battles = battles_of([*BALANCED, ("v", "x", "model_b")])
    fit = fit_bradley_terry(battles)
    assert any("never won: v" in msg for msg in fit.warnings)
    assert fit.ratings[battles.model_index("v")] == fit.ratings.min()
    intervals = sandwich_intervals(battles)
    assert intervals.warnings == fit.warnings
    assert np.isfinite(intervals.upper).all()


def test_disconnected_graph_is_flagged_and_each_part_centred():
    rows = [*BALANCED, ("p", "q", "model_a"), ("q", "p", "model_a"), ("q", "p", "tie")]
    battles = battles_of(rows)
    fit = fit_bradley_terry(battles)
    assert any("disconnected (2 parts)" in msg for msg in fit.warnings)
    parts = [[battles.model_index(m) for m in "xyz"], [battles.model_index(m) for m in "pq"]]
    for part in parts:
        assert abs(fit.ratings[part].mean() - 1000) < 1e-9
    boot = bootstrap_intervals(battles, rounds=50, seed=1)
    assert np.isfinite(boot.lower).all()


def test_single_battle():
    fit = fit_bradley_terry(battles_of([("a", "b", "model_a")]))
    assert fit.ratings[0] > fit.ratings[1]
    assert any("never lost: a" in msg for msg in fit.warnings)
    tie = fit_bradley_terry(battles_of([("a", "b", "tie")]))
    np.testing.assert_allclose(tie.ratings, [1000, 1000])
    assert tie.warnings == ()


def test_davidson_needs_ties_and_decisive_battles():
    with pytest.raises(RatingInputError, match="Davidson"):
        fit_bradley_terry(
            battles_of([("a", "b", "model_a"), ("b", "a", "model_a")]), ties="davidson"
        )


def test_unknown_options_are_rejected():
    battles = battles_of(BALANCED)
    with pytest.raises(RatingInputError):
        fit_bradley_terry(battles, ties="third")
    with pytest.raises(RatingInputError):
        fit_bradley_terry(battles, reweight="magic")
    with pytest.raises(RatingInputError, match="not among"):
        fit_bradley_terry(battles, anchor=("nobody", 1000.0))
    with pytest.raises(RatingInputError):
        sandwich_intervals(battles, simultaneous="sidak")
    with pytest.raises(RatingInputError, match="needs features"):
        fit_style_control(battles)


def test_style_control_without_varying_features_is_a_clear_error():
    from arena.ratings import Battles, fit_style_control
    from arena.ratings.errors import RatingInputError

    same = np.ones((6, 2))
    battles = Battles.from_columns(
        ["a", "b", "a", "b", "a", "b"],
        ["b", "a", "b", "a", "b", "a"],
        ["model_a", "model_b", "model_a", "tie", "model_b", "model_a"],
        features_a=same,
        features_b=same,
    )
    with pytest.raises(RatingInputError, match="varies across battles"):
        fit_style_control(battles, ci="sandwich")
