"""Style-control likelihood on battles sorted by model pair, and one bootstrap round's fit.

Kept apart from :mod:`arena.ratings.style_control` (options, intervals, results); the
finite-optimum rule for resamples is the plain fit's (:mod:`arena.ratings.bradley_terry`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arena.ratings.battles import A_WINS, B_WINS, Battles
from arena.ratings.bradley_terry import (
    _MAX_ITER,
    RESAMPLE_PRIOR_PRECISION,
    _newton,
    log_sigmoid,
    pair_laplacian,
    resample_setup,
    sigmoid,
)

_CHORD_TOL = 1e-6  # natural-log units; the error left is ~1e-8 (chord contraction)
_CHORD_MAX = 60


@dataclass(frozen=True)
class _Rows:
    """Battles sorted by ordered (a, b) pair, so each pair's battles are one contiguous block;
    sums over a pair's battles become ``reduceat`` calls instead of scattered adds."""

    n_models: int
    block_a: np.ndarray
    block_b: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    y: np.ndarray
    w: np.ndarray
    x: np.ndarray

    def block_sum(self, v: np.ndarray) -> np.ndarray:
        return np.add.reduceat(v, self.starts, axis=0)

    def spread(self, dtheta_block: np.ndarray) -> np.ndarray:
        return np.repeat(dtheta_block, self.lengths)

    def to_models(self, block_values: np.ndarray) -> np.ndarray:
        """Σ over blocks of value·(e_a - e_b), for 1-D or (blocks, m) values."""
        n = self.n_models
        if block_values.ndim == 1:
            return np.bincount(self.block_a, block_values, n) - np.bincount(
                self.block_b, block_values, n
            )
        return np.stack([self.to_models(c) for c in block_values.T], axis=1)

    def subset(self, counts: np.ndarray) -> _Subset:
        """The rows drawn at least once in a bootstrap round, with their multiplicities."""
        idx = np.flatnonzero(counts)
        starts = np.searchsorted(idx, self.starts)
        lengths = np.diff(np.r_[starts, len(idx)])
        cw = self.w[idx] * counts[idx]
        return _Subset(
            rows=self,
            starts=np.minimum(starts, max(len(idx) - 1, 0)),
            lengths=lengths,
            empty=lengths == 0,
            x=self.x[idx],
            half_cw=0.5 * cw,
            centred=cw * (self.y[idx] - 0.5),
        )


@dataclass(frozen=True)
class _Subset:
    rows: _Rows
    starts: np.ndarray
    lengths: np.ndarray
    empty: np.ndarray
    x: np.ndarray
    half_cw: np.ndarray
    centred: np.ndarray

    def gradient(self, params: np.ndarray, ridge_t: float, ridge_c: float) -> np.ndarray:
        """Log-likelihood gradient; y - σ(d) = (y - ½) - ½·tanh(d/2) saves passes over rows."""
        rows, n = self.rows, self.rows.n_models
        theta, gamma = params[:n], params[n:]
        half_d = np.repeat(0.5 * (theta[rows.block_a] - theta[rows.block_b]), self.lengths)
        half_d += self.x @ (0.5 * gamma)
        np.tanh(half_d, out=half_d)
        half_d *= self.half_cw
        r = np.subtract(self.centred, half_d, out=half_d)
        block = np.add.reduceat(r, self.starts)
        block[self.empty] = 0.0
        grad = np.empty_like(params)
        grad[:n] = rows.to_models(block) - ridge_t * theta
        grad[n:] = r @ self.x - ridge_c * gamma
        return grad


def _sorted_rows(battles: Battles, weights: np.ndarray, x: np.ndarray) -> _Rows:
    n = battles.n_models
    keep = weights > 0
    key = battles.model_a.astype(np.int64)[keep] * n + battles.model_b[keep]
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    lengths = np.diff(np.r_[starts, len(key)])
    o = battles.outcome[keep][order]
    y = np.where(o == A_WINS, 1.0, np.where(o == B_WINS, 0.0, 0.5))
    return _Rows(
        n_models=n,
        block_a=key[starts] // n,
        block_b=key[starts] % n,
        starts=starts,
        lengths=lengths,
        y=y,
        w=weights[keep][order],
        x=np.ascontiguousarray(x[keep][order]),
    )


def _objective(rows: _Rows, ridge_theta: float, ridge_coef: float, prior=None):
    """Loss, gradient and Hessian over (theta, gamma) on the full data; the ridge on theta
    is centred at ``prior`` (zeros unless given)."""
    n, k = rows.n_models, rows.x.shape[1]
    centre = np.zeros(n) if prior is None else prior
    cw, y = rows.w, rows.y
    xt = np.ascontiguousarray(rows.x.T)

    def func(params):
        theta, gamma = params[:n], params[n:]
        d = rows.spread(theta[rows.block_a] - theta[rows.block_b]) + rows.x @ gamma
        p, q = sigmoid(d), sigmoid(-d)
        with np.errstate(divide="ignore", invalid="ignore"):
            ll = y * np.log(p) + (1 - y) * np.log(q)
        if not np.isfinite(ll).all():
            ll = y * log_sigmoid(d) + (1 - y) * log_sigmoid(-d)
        dev = theta - centre
        loss = -(cw @ ll) + 0.5 * ridge_theta * dev @ dev + 0.5 * ridge_coef * gamma @ gamma
        r = cw * (y - p)
        grad = np.empty(n + k)
        grad[:n] = -rows.to_models(rows.block_sum(r)) + ridge_theta * dev
        grad[n:] = -(xt @ r) + ridge_coef * gamma
        h = cw * p * q
        hxt = xt * h
        hess = np.empty((n + k, n + k))
        hess[:n, :n] = pair_laplacian(n, rows.block_a, rows.block_b, rows.block_sum(h))
        hess[np.arange(n), np.arange(n)] += ridge_theta
        cross = rows.to_models(np.add.reduceat(hxt, rows.starts, axis=1).T)
        hess[:n, n:] = cross
        hess[n:, :n] = cross.T
        hess[n:, n:] = hxt @ rows.x + ridge_coef * np.eye(k)
        return loss, grad, hess

    return func


def _fit_resample(
    rows: _Rows,
    counts: np.ndarray,
    params: np.ndarray,
    inv: np.ndarray,
    ridge_t: float,
    ridge_c: float,
) -> tuple[np.ndarray, bool, bool]:
    """One bootstrap round: (parameters, converged, regularized).

    A resample can lose every win (or every loss) of a rarely seen model; its likelihood
    then has no finite optimum, and iterating anyway sends that model towards -inf and,
    through the centring, every other rating upwards. Such rounds are fitted with the
    resample prior (see the module docstring) instead.
    """
    n, k = rows.n_models, rows.x.shape[1]
    cw = rows.w * counts
    i_mass = rows.block_sum(cw * (rows.y > 0))
    j_mass = rows.block_sum(cw * (rows.y < 1))
    _, fix_t, regularized = resample_setup(n, rows.block_a, rows.block_b, i_mass, j_mass, ridge_t)
    if not regularized:
        sub = rows.subset(counts)
        p = params.copy()
        for _ in range(_CHORD_MAX):
            step = inv @ sub.gradient(p, ridge_t, ridge_c)
            p += step
            if np.max(np.abs(step)) < _CHORD_TOL:
                return p, True, False
    reweighted = _Rows(**{**rows.__dict__, "w": cw})
    fix = np.zeros((n + k, n + k))
    if regularized:
        func = _objective(reweighted, RESAMPLE_PRIOR_PRECISION, ridge_c, prior=params[:n])
    else:
        fix[:n, :n] = fix_t
        func = _objective(reweighted, ridge_t, ridge_c)
    p, it, _, _ = _newton(func, params, fix)
    if it < _MAX_ITER:
        return p, True, regularized
    # Style features alone can separate a tiny resample: the prior on every parameter makes
    # the loss strictly convex and coercive, so this fit always has a finite optimum.
    func = _objective(
        reweighted, RESAMPLE_PRIOR_PRECISION, ridge_c + RESAMPLE_PRIOR_PRECISION, prior=params[:n]
    )
    p, it, _, _ = _newton(func, params, np.zeros((n + k, n + k)))
    return p, it < _MAX_ITER, True
