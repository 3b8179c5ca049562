"""APGR and CPT on curves checked by hand, ties moving together, calibration hitting the
requested strong share, and the plot."""

from __future__ import annotations

import numpy as np
import pytest

from arena.routing.errors import RoutingError
from arena.routing.evaluation import (
    apgr,
    calibrate_threshold,
    cpt,
    plot_curves,
    routing_curve,
)
from arena.routing.router import RandomRouter


def test_hand_checked_curve():
    # Four prompts; the strong model helps on the two the router ranks first.
    scores = np.array([0.9, 0.8, 0.2, 0.1])
    strong = np.array([1.0, 1.0, 1.0, 1.0])
    weak = np.array([0.0, 0.0, 1.0, 1.0])
    curve = routing_curve(scores, strong, weak)
    np.testing.assert_allclose(curve.share, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.quality, [0.5, 0.75, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(curve.pgr, [0, 0.5, 1, 1, 1])
    # Trapezoids of width 1/4: ((0+.5)/2 + (.5+1)/2 + 1 + 1) / 4 = 3/4
    assert apgr(curve) == pytest.approx(0.75)
    assert cpt(curve, 0.5) == pytest.approx(0.25)
    assert cpt(curve, 0.8) == pytest.approx(0.25 + 0.25 * (0.8 - 0.5) / 0.5)
    assert curve.strong_quality == 1.0 and curve.weak_quality == 0.5


def test_worst_router_and_interpolation():
    # Ranked backwards: the helpful prompt is routed last.
    curve = routing_curve(np.array([0.9, 0.1]), np.array([0.0, 1.0]), np.array([0.0, 0.0]))
    np.testing.assert_allclose(curve.pgr, [0, 0, 1])
    assert apgr(curve) == pytest.approx(0.25)
    assert cpt(curve, 0.5) == pytest.approx(0.75)


def test_equal_scores_move_together():
    curve = routing_curve(np.array([0.5, 0.5, 0.5, 0.1]), np.ones(4), np.zeros(4))
    np.testing.assert_allclose(curve.share, [0, 0.75, 1.0])
    np.testing.assert_allclose(curve.thresholds[1:], [0.5, 0.1])


def test_no_gap_is_an_error():
    curve = routing_curve(np.array([0.1, 0.2]), np.ones(2), np.ones(2))
    with pytest.raises(RoutingError, match="no gap"):
        apgr(curve)
    with pytest.raises(RoutingError, match="one length"):
        routing_curve(np.array([0.1]), np.ones(2), np.ones(2))


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 0.5, 0.8, 1.0])
def test_calibration_hits_the_share(share):
    prompts = [f"prompt {i}" for i in range(1000)]
    scores = RandomRouter(seed=3).strong_win_rate(prompts)
    threshold = calibrate_threshold(scores, share)
    assert np.mean(scores >= threshold) == pytest.approx(share, abs=1e-9)
    # it carries over to a fresh sample from the same router, within sampling error
    fresh = RandomRouter(seed=3).strong_win_rate([f"other {i}" for i in range(4000)])
    assert abs(np.mean(fresh >= threshold) - share) < 0.03
    with pytest.raises(RoutingError):
        calibrate_threshold(scores, 1.5)


def test_random_router_sits_on_the_diagonal():
    rng = np.random.default_rng(0)
    n = 20000
    strong = (rng.random(n) < 0.8).astype(float)
    weak = (rng.random(n) < 0.5).astype(float)
    scores = RandomRouter().strong_win_rate([f"q{i}" for i in range(n)])
    curve = routing_curve(scores, strong, weak)
    assert apgr(curve) == pytest.approx(0.5, abs=0.02)
    assert cpt(curve, 0.5) == pytest.approx(0.5, abs=0.03)
    assert cpt(curve, 0.8) == pytest.approx(0.8, abs=0.03)


def test_plot_is_written(tmp_path):
    curve = routing_curve(np.array([0.9, 0.2]), np.ones(2), np.array([0.0, 1.0]))
    path = plot_curves({"mine": curve}, tmp_path / "p" / "c.png", title="t", strong="S", weak="W")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
