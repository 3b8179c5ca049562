"""Simulated battles with known true strengths, shared by the rating tests."""

from __future__ import annotations

import numpy as np

from arena.ratings import Battles

WINNERS = np.array(["model_a", "model_b", "tie", "tie (bothbad)"])


def names(n_models: int) -> np.ndarray:
    return np.array([f"model-{i:03d}" for i in range(n_models)])


def simulate_battles(
    n_models: int,
    n_battles: int,
    *,
    seed: int,
    spread: float = 0.6,
    tie_rate: float = 0.0,
    pair_probs: np.ndarray | None = None,
):
    """Battles from a Bradley–Terry model; returns (model_a, model_b, winner, true_theta).

    Ties, when asked for, replace results at random, independent of strength; they pull
    fitted differences towards zero, so calibration checks simulate without them.
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n_models)
    theta -= theta.mean()
    if pair_probs is None:
        a = rng.integers(0, n_models, n_battles)
        b = (a + rng.integers(1, n_models, n_battles)) % n_models
    else:
        iu = np.array([(i, j) for i in range(n_models) for j in range(n_models) if i != j])
        pick = rng.choice(len(iu), size=n_battles, p=pair_probs)
        a, b = iu[pick, 0], iu[pick, 1]
    p = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
    code = np.where(rng.random(n_battles) < p, 0, 1)
    tie = rng.random(n_battles) < tie_rate
    code[tie] = 2 + (rng.random(tie.sum()) < 0.5)
    labels = names(n_models)
    return labels[a], labels[b], WINNERS[code], theta


def simulate_style_battles(
    n_models: int,
    n_battles: int,
    *,
    seed: int,
    gamma=(0.35, 0.10, 0.05, 0.08),
    spread: float = 0.6,
):
    """Battles whose outcome also depends on style (reference-normalized per-side features).

    Returns (model_a, model_b, winner, features_a, features_b, true_theta, true_gamma).
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n_models)
    theta -= theta.mean()
    a = rng.integers(0, n_models, n_battles)
    b = (a + rng.integers(1, n_models, n_battles)) % n_models
    mean_len = rng.uniform(150, 900, n_models)
    mean_md = rng.uniform(0.5, 6, (n_models, 3))

    def side(m):
        return np.column_stack(
            [rng.poisson(mean_len[m]), *(rng.poisson(mean_md[m, c]) for c in range(3))]
        ).astype(float)

    fa, fb = side(a), side(b)
    total = fa + fb
    x = (fa - fb) / np.where(total == 0, 1.0, total)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    gamma = np.asarray(gamma, dtype=float)
    p = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + x @ gamma)))
    code = np.where(rng.random(n_battles) < p, 0, 1)
    labels = names(n_models)
    return labels[a], labels[b], WINNERS[code], fa, fb, theta, gamma


STYLE_NAMES = ["tokens", "headers", "lists", "bold"]


def rare_model_battles(seed=1, n_models=20, n_battles=20000, rare_battles=40, tie_rate=0.0):
    """Uniform battles among n_models - 1 models plus a weak model seen in only a few
    battles (3 wins of 40 here): some resamples drop all its wins and lose their finite
    optimum. With style features; ``tie_rate`` turns that share of the other battles into
    ties (the rare model's stay decisive, so its resamples still can lose every win)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.6, n_models)
    theta[-1] = -2.0
    a = rng.integers(0, n_models - 1, n_battles)
    b = (a + rng.integers(1, n_models - 1, n_battles)) % (n_models - 1)
    b[:rare_battles] = n_models - 1
    mean_len = rng.uniform(150, 900, n_models)
    mean_md = rng.uniform(0.5, 6, (n_models, 3))

    def side(m):
        counts = [rng.poisson(mean_len[m]), *(rng.poisson(mean_md[m, c]) for c in range(3))]
        return np.column_stack(counts).astype(float)

    fa, fb = side(a), side(b)
    total = fa + fb
    x = (fa - fb) / np.where(total == 0, 1.0, total)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    p = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + x @ np.array([0.35, 0.10, 0.05, 0.08]))))
    winner = np.where(rng.random(n_battles) < p, "model_a", "model_b")
    if tie_rate > 0:
        tie = rng.random(n_battles) < tie_rate
        tie[:rare_battles] = False
        winner[tie] = "tie"
    return Battles.from_columns(
        names(n_models)[a],
        names(n_models)[b],
        winner,
        features_a=fa,
        features_b=fb,
        feature_names=STYLE_NAMES,
    )
