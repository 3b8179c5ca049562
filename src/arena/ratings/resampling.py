"""Exact multinomial resampling counts, faster than drawing them category by category.

``numpy``'s multinomial draws one binomial per category; for bootstrap rounds over tens of
thousands of cells that dominates the run time. Here each round draws independent Poisson
counts with the same means (about twice as fast) and then corrects the total: given the
Poisson total t, the counts are multinomial(t, p); adding N - t categorical draws, or
removing t - N of the t items chosen uniformly without replacement, leaves exactly
multinomial(N, p). So the result has the multinomial distribution, not an approximation.
"""

from __future__ import annotations

import numpy as np


def multinomial_counts(
    rng: np.random.Generator, n_total: int, probs: np.ndarray, size: int
) -> np.ndarray:
    """``size`` rows of Multinomial(n_total, probs) counts, as int64."""
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum()
    counts = rng.poisson(n_total * probs, size=(size, len(probs)))
    totals = counts.sum(axis=1)
    cdf = np.cumsum(probs)
    cdf[-1] = 1.0
    over = np.flatnonzero(totals > n_total)
    running = np.cumsum(counts[over], axis=1) if len(over) else None
    for pos, r in enumerate(over):
        drop = rng.choice(int(totals[r]), size=int(totals[r]) - n_total, replace=False)
        np.subtract.at(counts[r], np.searchsorted(running[pos], drop, side="right"), 1)
    for r in np.flatnonzero(totals < n_total):
        extra = np.searchsorted(cdf, rng.random(n_total - int(totals[r])), side="right")
        np.add.at(counts[r], np.minimum(extra, len(probs) - 1), 1)
    return counts
