"""Model-by-model matrices: predicted win rates, observed win fractions, battle counts.

Rows and columns follow ``battles.models`` (or the order of the ratings given). Entry
[i, j] is about model i against model j, whichever side each sat on.
"""

from __future__ import annotations

import numpy as np

from arena.ratings.battles import A_WINS, B_WINS, Battles


def predicted_win_matrix(
    ratings: np.ndarray, *, scale: float = 400.0, base: float = 10.0
) -> np.ndarray:
    """P(i beats j) under Bradley–Terry; the diagonal is NaN (no self-battles)."""
    r = np.asarray(ratings, dtype=np.float64)
    mat = 1.0 / (1.0 + base ** ((r[None, :] - r[:, None]) / scale))
    np.fill_diagonal(mat, np.nan)
    return mat


def battle_count_matrix(battles: Battles) -> np.ndarray:
    """Symmetric counts of battles between each pair (weights ignored)."""
    n = battles.n_models
    flat = np.bincount(
        battles.model_a.astype(np.int64) * n + battles.model_b, minlength=n * n
    ).reshape(n, n)
    return flat + flat.T


def observed_win_fraction(battles: Battles) -> np.ndarray:
    """Share of i's battles against j that i won, ties counting one half; NaN if none."""
    n = battles.n_models
    a, b = battles.model_a.astype(np.int64), battles.model_b.astype(np.int64)
    score_a = np.where(
        battles.outcome == A_WINS, 1.0, np.where(battles.outcome == B_WINS, 0.0, 0.5)
    )
    won = np.bincount(a * n + b, score_a, n * n) + np.bincount(b * n + a, 1.0 - score_a, n * n)
    counts = battle_count_matrix(battles).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, won.reshape(n, n) / counts, np.nan)
