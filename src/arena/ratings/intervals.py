"""Confidence intervals for Bradley–Terry ratings: bootstrap and sandwich, and ranks.

The bootstrap draws multinomial counts over the aggregated cells (equivalent to
resampling battles with replacement) and fits every round at once: rounds start from the
full-data optimum and iterate with the full-data Hessian (a chord method), which converges
in a few cheap matrix products because each round's Hessian is close to it. Rounds that do
not settle are finished by a full Newton solve. A round whose resample has no finite
optimum is fitted under the resample prior (see :mod:`arena.ratings.bradley_terry`). The
sandwich estimator H⁻¹ G H⁻¹ uses the per-battle score variance, so it stays valid with ties
counted as half wins and with weights.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.sparse import csr_matrix

from arena.ratings.battles import DRAW, I_WINS, J_WINS, Battles
from arena.ratings.bradley_terry import (
    _newton,
    centring_matrix,
    davidson_objective,
    davidson_probs,
    fit_with_table,
    half_objective,
    pair_laplacian,
    resample_prior_warning,
    resample_setup,
    sigmoid,
)
from arena.ratings.errors import RatingInputError
from arena.ratings.evidence import apply_evidence_limits
from arena.ratings.resampling import multinomial_counts

_CHORD_TOL = 1e-7  # natural-log units: under 2e-5 rating points
_CHORD_MAX = 60
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Intervals:
    """Ratings with lower/upper bounds on the display scale.

    ``covariance`` is the display-scale covariance of the ratings (sandwich: the estimate;
    bootstrap: the sample covariance of the rounds). ``samples`` holds the bootstrap rounds
    (rounds × models) so callers can derive rank distributions; None for the sandwich.
    """

    models: tuple[str, ...]
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    covariance: np.ndarray | None
    method: str
    confidence: float
    simultaneous: str | None
    rounds: int | None = None
    samples: np.ndarray | None = None
    warnings: tuple[str, ...] = ()

    @property
    def rank(self) -> np.ndarray:
        return rank_upper_bound(self.lower, self.upper)

    @property
    def width(self) -> np.ndarray:
        return self.upper - self.lower


def rank_upper_bound(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank (UB): 1 + the number of models whose lower bound is above this model's upper bound."""
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    srt = np.sort(lower)
    return 1 + len(lower) - np.searchsorted(srt, upper, side="right")


def critical_value(confidence: float, n_models: int, simultaneous: str | None) -> float:
    """Half-width multiplier of the standard error for a two-sided interval."""
    if not 0 < confidence < 1:
        raise RatingInputError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    if simultaneous is None:
        return float(stats.norm.ppf(1 - alpha / 2))
    if simultaneous == "bonferroni":
        return float(stats.norm.ppf(1 - alpha / (2 * n_models)))
    if simultaneous == "chi2":
        # Scheffé-style: covers every linear contrast of the k-1 free ratings at once.
        return float(math.sqrt(stats.chi2.ppf(confidence, max(n_models - 1, 1))))
    raise RatingInputError(
        f"simultaneous must be None, 'bonferroni' or 'chi2', not {simultaneous!r}"
    )


def _anchor_matrix(battles: Battles, fit) -> np.ndarray:
    """Linear map from theta to displayed ratings' deviations (anchoring and, with
    separation, the centring on finite-rated models included)."""
    n = battles.n_models
    mat = np.eye(n) * fit.alpha
    if fit.anchor is not None:
        idx = battles.model_index(fit.anchor[0])
        mat[:, idx] -= fit.alpha
    return mat if fit.projection is None else mat @ fit.projection


def sandwich_intervals(
    battles: Battles,
    *,
    confidence: float = 0.95,
    simultaneous: str | None = None,
    **fit_kwargs,
) -> Intervals:
    """Robust (sandwich) intervals around the maximum-likelihood fit."""
    fit, table = fit_with_table(battles, **fit_kwargs)
    n = battles.n_models
    d = fit.theta[table.pair_i] - fit.theta[table.pair_j]
    dc = d[table.cell_pair]
    o = table.cell_outcome
    if fit.ties == "half":
        y = np.where(o == I_WINS, 1.0, np.where(o == J_WINS, 0.0, 0.5))
        score = y - sigmoid(dc)
        g_pair = table.pair_sums(table.weight_sq * score**2)
        meat = pair_laplacian(n, table.pair_i, table.pair_j, g_pair)
        bread = fit.hessian
        fix = np.zeros((n, n)) if fit.ridge > 0 else centring_matrix(fit.components)
    else:
        tau = math.log(fit.tie_param)
        pa, pb, pt = davidson_probs(dc, tau)
        sd = np.where(o == I_WINS, 0.5, np.where(o == J_WINS, -0.5, 0.0)) - (pa - pb) / 2
        st = (o == DRAW).astype(float) - pt
        ws = table.weight_sq
        meat = np.zeros((n + 1, n + 1))
        meat[:n, :n] = pair_laplacian(n, table.pair_i, table.pair_j, table.pair_sums(ws * sd * sd))
        cross = table.pair_sums(ws * sd * st)
        meat[:n, n] = meat[n, :n] = np.bincount(table.pair_i, cross, minlength=n) - np.bincount(
            table.pair_j, cross, minlength=n
        )
        meat[n, n] = ws @ (st * st)
        bread = fit.hessian
        fix = np.zeros((n + 1, n + 1))
        if fit.ridge == 0:
            fix[:n, :n] = centring_matrix(fit.components)
    inv = np.linalg.inv(bread + fix)
    cov_theta = (inv @ meat @ inv)[:n, :n]
    amap = _anchor_matrix(battles, fit)
    cov = amap @ cov_theta @ amap.T
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    z = critical_value(confidence, n, simultaneous)
    lower, upper, limits = apply_evidence_limits(
        table,
        fit.ratings,
        fit.ratings - z * se,
        fit.ratings + z * se,
        _model_based_se(battles, fit),
        z,
        fit.alpha,
    )
    return Intervals(
        models=battles.models,
        ratings=fit.ratings,
        lower=lower,
        upper=upper,
        covariance=cov,
        method="sandwich",
        confidence=confidence,
        simultaneous=simultaneous,
        warnings=(*fit.warnings, *limits),
    )


def _model_based_se(battles: Battles, fit) -> np.ndarray:
    """Display-scale standard errors from the inverse Fisher information (the Hessian)."""
    n = battles.n_models
    size = fit.hessian.shape[0]
    fix = np.zeros((size, size))
    if fit.ridge == 0:
        fix[:n, :n] = centring_matrix(fit.components)
    amap = _anchor_matrix(battles, fit)
    # The fix is a projection onto the directions the Hessian cannot see, so the inverse
    # of the sum is the pseudo-inverse plus the fix; take the fix back out.
    cov = amap @ (np.linalg.inv(fit.hessian + fix) - fix)[:n, :n] @ amap.T
    return np.sqrt(np.clip(np.diag(cov), 0, None))


def incidence(n: int, pair_i: np.ndarray, pair_j: np.ndarray) -> csr_matrix:
    """Sparse (pairs × models) matrix with +1 at i and -1 at j: d = inc @ theta."""
    rows = np.arange(len(pair_i))
    return csr_matrix(
        (
            np.concatenate([np.ones(len(pair_i)), -np.ones(len(pair_j))]),
            (np.concatenate([rows, rows]), np.concatenate([pair_i, pair_j])),
        ),
        shape=(len(pair_i), n),
    )


def _chord_rounds(
    inc: csr_matrix,
    total: np.ndarray,
    wins: np.ndarray,
    theta0: np.ndarray,
    m0: np.ndarray,
    ridge: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve many half-tie fits at once (one per row of total/wins) by chord iterations
    with the fixed inverse Hessian ``m0``; returns thetas and which rounds converged."""
    rows = len(total)
    theta = np.tile(theta0, (rows, 1))
    active = np.arange(rows)
    done = np.zeros(rows, dtype=bool)
    for _ in range(_CHORD_MAX):
        if len(active) == 0:
            break
        th = theta[active]
        d = (inc @ th.T).T
        r = wins[active] - total[active] * sigmoid(d)
        grad = r @ inc - ridge * th
        step = grad @ m0
        theta[active] = th + step
        ok = np.max(np.abs(step), axis=1) < _CHORD_TOL
        done[active[ok]] = True
        active = active[~ok]
    return theta, done


def _threads(n_jobs: int | None) -> int:
    return max(1, min(os.cpu_count() or 1, 4)) if n_jobs is None else max(1, n_jobs)


def bootstrap_intervals(
    battles: Battles,
    *,
    rounds: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    simultaneous: str | None = None,
    n_jobs: int | None = None,
    **fit_kwargs,
) -> Intervals:
    """Percentile bootstrap over battles (multinomial counts over the unique cells, seeded).

    Results depend only on ``seed`` and ``rounds``, not on ``n_jobs`` (threads; each block
    of rounds has its own generator spawned from the seed). With sample weights, a drawn
    battle carries the mean weight of its cell. With ``simultaneous`` set,
    bounds are the full-data rating ± the critical value times the bootstrap standard
    deviation (Bonferroni or chi-square), since joint percentile bounds need far more
    rounds than a leaderboard runs.
    """
    if rounds < 2:
        raise RatingInputError("bootstrap needs at least 2 rounds", param="rounds")
    fit, table = fit_with_table(battles, **fit_kwargs)
    n = battles.n_models
    n_total = int(table.count.sum())
    per_draw = table.weight / table.count
    probs = table.count / table.count.sum()
    o = table.cell_outcome
    fix = np.zeros((n, n)) if fit.ridge > 0 else centring_matrix(fit.components)
    n_cells = len(probs)
    # Cell -> pair summation as one sparse product per block of rounds.
    to_pair = csr_matrix(
        (np.ones(n_cells), (np.arange(n_cells), table.cell_pair)), shape=(n_cells, table.n_pairs)
    )
    ycell = np.where(o == I_WINS, 1.0, np.where(o == J_WINS, 0.0, 0.5))
    inc = incidence(n, table.pair_i, table.pair_j)
    m0 = np.linalg.inv(fit.hessian + fix) if fit.ties == "half" else None
    block = int(min(max(1, _CHUNK_ELEMENTS // max(n_cells, table.n_pairs * 4)), 128))
    starts = list(range(0, rounds, block))
    seeds = np.random.SeedSequence(seed).spawn(len(starts))

    def run_block(idx: int) -> tuple[np.ndarray, int]:
        size = min(block, rounds - starts[idx])
        rng = np.random.default_rng(seeds[idx])
        counts = multinomial_counts(rng, n_total, probs, size).astype(np.float64)
        w_cells = counts * per_draw
        failed = regularized = 0
        if fit.ties == "half":
            total = w_cells @ to_pair
            wins = (w_cells * ycell) @ to_pair
            losses = total - wins
            # A resample with no finite optimum cannot pass the chord's step test: its
            # gradient vanishes only far out (tens of log units), and the chord steps shrink
            # slowly on the way. So such rounds always reach the check below.
            th, ok = _chord_rounds(inc, total, wins, fit.theta, m0, fit.ridge)
            for r in np.flatnonzero(~ok):
                ridge, fix_r, reg = resample_setup(
                    n, table.pair_i, table.pair_j, wins[r], losses[r], fit.ridge
                )
                func = half_objective(
                    n,
                    table.pair_i,
                    table.pair_j,
                    total[r],
                    wins[r],
                    ridge,
                    centre=fit.theta if reg else None,
                )
                th[r], iters, _, _ = _newton(func, fit.theta, fix_r)
                failed += iters >= 200
                regularized += reg
            return th, failed, regularized
        th = np.empty((size, n))
        fix_full = np.zeros((n + 1, n + 1))
        fix_full[:n, :n] = fix
        x0 = np.append(fit.theta, math.log(fit.tie_param))
        for r in range(size):
            ow = np.stack(
                [
                    np.bincount(table.cell_pair[o == c], w_cells[r][o == c], table.n_pairs)
                    for c in (I_WINS, J_WINS, DRAW)
                ]
            )
            ridge, fix_r, reg = resample_setup(
                n, table.pair_i, table.pair_j, ow[0] + ow[2], ow[1] + ow[2], fit.ridge
            )
            fix_full[:n, :n] = fix_r
            func = davidson_objective(
                n,
                table.pair_i,
                table.pair_j,
                ow[0],
                ow[1],
                ow[2],
                ridge,
                centre=fit.theta if reg else None,
            )
            x, iters, _, _ = _newton(func, x0, fix_full)
            th[r] = x[:n]
            failed += iters >= 200
            regularized += reg
        return th, failed, regularized

    with ThreadPoolExecutor(_threads(n_jobs)) as pool:
        results = list(pool.map(run_block, range(len(starts))))
    thetas = np.concatenate([r[0] for r in results])
    failed = sum(r[1] for r in results)
    regularized = sum(r[2] for r in results)
    amap = _anchor_matrix(battles, fit)
    base_rating = fit.ratings - fit.theta @ amap.T
    samples = base_rating + thetas @ amap.T
    cov = np.cov(samples, rowvar=False)
    warnings = list(fit.warnings)
    if failed:
        warnings.append(f"{failed} of {rounds} bootstrap rounds did not converge")
    if regularized:
        warnings.append(resample_prior_warning(regularized, rounds))
    z = critical_value(confidence, n if simultaneous else 1, simultaneous)
    if simultaneous is None:
        alpha = 1.0 - confidence
        lower = np.quantile(samples, alpha / 2, axis=0)
        upper = np.quantile(samples, 1 - alpha / 2, axis=0)
    else:
        se = samples.std(axis=0, ddof=1)
        lower, upper = fit.ratings - z * se, fit.ratings + z * se
    lower, upper, limits = apply_evidence_limits(
        table, fit.ratings, lower, upper, _model_based_se(battles, fit), z, fit.alpha
    )
    return Intervals(
        models=battles.models,
        ratings=fit.ratings,
        lower=lower,
        upper=upper,
        covariance=cov,
        method="bootstrap",
        confidence=confidence,
        simultaneous=simultaneous,
        rounds=rounds,
        samples=samples,
        warnings=(*warnings, *limits),
    )
