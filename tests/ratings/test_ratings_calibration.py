"""Calibration: 95% intervals cover the true strengths about 95% of the time."""

from __future__ import annotations

import math

import numpy as np

from arena.ratings import Battles, bootstrap_intervals, fit_style_control, sandwich_intervals
from ratings.simulate import simulate_battles, simulate_style_battles

ALPHA = 400 / math.log(10)


def coverage(intervals, truth_theta) -> np.ndarray:
    truth = 1000 + ALPHA * (truth_theta - truth_theta.mean())
    return (intervals.lower <= truth) & (truth <= intervals.upper)


def test_sandwich_intervals_cover_the_truth():
    hits = []
    for rep in range(300):
        a, b, w, theta = simulate_battles(8, 1500, seed=1000 + rep)
        hits.append(coverage(sandwich_intervals(Battles.from_columns(a, b, w)), theta))
    rate = np.mean(hits)
    assert 0.93 <= rate <= 0.97, rate


def test_bootstrap_intervals_cover_the_truth():
    hits = []
    for rep in range(200):
        a, b, w, theta = simulate_battles(6, 1500, seed=5000 + rep)
        boot = bootstrap_intervals(Battles.from_columns(a, b, w), rounds=200, seed=rep)
        hits.append(coverage(boot, theta))
    rate = np.mean(hits)
    assert 0.93 <= rate <= 0.97, rate


def test_style_sandwich_intervals_cover_ratings_and_coefficients():
    hits, coef_hits = [], []
    for rep in range(200):
        a, b, w, fa, fb, theta, gamma = simulate_style_battles(6, 1500, seed=9000 + rep)
        battles = Battles.from_columns(a, b, w, features_a=fa, features_b=fb)
        fit = fit_style_control(battles, ci="sandwich", compare_plain=False)
        hits.append(coverage(fit, theta))
        lo = np.array(list(fit.coefficient_lower.values()))
        hi = np.array(list(fit.coefficient_upper.values()))
        coef_hits.append((lo <= gamma) & (gamma <= hi))
    assert 0.93 <= np.mean(hits) <= 0.97, np.mean(hits)
    assert 0.93 <= np.mean(coef_hits) <= 0.97, np.mean(coef_hits)
