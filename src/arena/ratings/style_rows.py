"""Style-control likelihoods on battles sorted by model pair, for both tie models.

Battles are sorted by ordered (a, b) pair once, so each pair's battles form one contiguous
block and sums over a pair become ``reduceat`` calls instead of scattered adds. With
d = θ_a - θ_b + xᵀγ, ties count as half wins (``"half"``: P(a) = σ(d)) or follow Davidson
(``"davidson"``: P(a) ∝ e^{d/2}, P(b) ∝ e^{-d/2}, P(tie) ∝ ν, with log ν appended to the
parameters, as in :func:`arena.ratings.bradley_terry.davidson_objective`). Kept apart from
:mod:`arena.ratings.style_control` (options, intervals, results) and
:mod:`arena.ratings.style_bootstrap` (resampling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arena.ratings.battles import A_WINS, B_WINS, Battles
from arena.ratings.bradley_terry import davidson_probs, log_sigmoid, pair_laplacian, sigmoid


@dataclass(frozen=True)
class _Rows:
    """Battles sorted by ordered (a, b) pair; ``y`` is 1 (a won), 0 (b won) or ½ (tie)."""

    n_models: int
    block_a: np.ndarray
    block_b: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    y: np.ndarray
    w: np.ndarray
    xt: np.ndarray  # features × rows, each feature contiguous

    @property
    def n_features(self) -> int:
        return self.xt.shape[0]

    @property
    def x(self) -> np.ndarray:
        return self.xt.T

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

    def d(self, params: np.ndarray) -> np.ndarray:
        n, k = self.n_models, self.n_features
        theta = params[:n]
        return self.spread(theta[self.block_a] - theta[self.block_b]) + params[n : n + k] @ self.xt

    def reweighted(self, w: np.ndarray) -> _Rows:
        fields = {f: getattr(self, f) for f in self.__dataclass_fields__}
        return _Rows(**{**fields, "w": w})


def _sorted_rows(battles: Battles, weights: np.ndarray, x: np.ndarray) -> _Rows:
    n = battles.n_models
    key = battles.model_a.astype(np.int64) * n + battles.model_b
    # Narrow keys sort by radix (O(n)); the stable order is the same either way.
    narrow = key.astype(np.uint16) if n * n <= 1 << 16 else key
    order = np.argsort(narrow, kind="stable")
    order = order[weights[order] > 0]
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    lengths = np.diff(np.r_[starts, len(key)])
    o = battles.outcome[order]
    y = np.where(o == A_WINS, 1.0, np.where(o == B_WINS, 0.0, 0.5))
    return _Rows(
        n_models=n,
        block_a=key[starts] // n,
        block_b=key[starts] % n,
        starts=starts,
        lengths=lengths,
        y=y,
        w=weights[order],
        xt=np.stack([column[order] for column in x.T]),
    )


def _assemble(rows: _Rows, h: np.ndarray, h_dt=None, h_tt=None) -> np.ndarray:
    """Σ over rows of [h·z zᵀ, h_dt·z; h_dt·zᵀ, h_tt] with z = (e_a - e_b, x): the Hessian
    from per-row curvatures, or the sandwich's meat from per-row score products. The last
    row/column (the tie parameter) only when ``h_dt`` is given."""
    n, k = rows.n_models, rows.n_features
    m = n + k + (h_dt is not None)
    out = np.empty((m, m))
    xt = rows.xt
    hxt = xt * h
    out[:n, :n] = pair_laplacian(n, rows.block_a, rows.block_b, rows.block_sum(h))
    cross = rows.to_models(np.add.reduceat(hxt, rows.starts, axis=1).T)
    out[:n, n : n + k] = cross
    out[n : n + k, :n] = cross.T
    out[n : n + k, n : n + k] = hxt @ xt.T
    if h_dt is not None:
        col = np.concatenate([rows.to_models(rows.block_sum(h_dt)), xt @ h_dt, [h_tt.sum()]])
        out[-1, :] = col
        out[:, -1] = col
    return out


def _gradient(rows: _Rows, e_d: np.ndarray, e_t=None) -> np.ndarray:
    """Σ over rows of e_d·z (and e_t for the tie parameter): the log-likelihood gradient
    from per-row scores."""
    parts = [rows.to_models(rows.block_sum(e_d)), rows.xt @ e_d]
    if e_t is not None:
        parts.append([e_t.sum()])
    return np.concatenate(parts)


def _row_terms(rows: _Rows, params: np.ndarray, ties: str):
    """Per row at ``params``: log-likelihood, score in d (and in log ν), curvatures.

    Returns (ll, e_d, e_t, h_dd, h_dt, h_tt), unweighted; the tie entries are None for
    ties as half wins.
    """
    d, y = rows.d(params), rows.y
    if ties == "half":
        p, q = sigmoid(d), sigmoid(-d)
        with np.errstate(divide="ignore", invalid="ignore"):
            ll = y * np.log(p) + (1 - y) * np.log(q)
        if not np.isfinite(ll).all():
            ll = y * log_sigmoid(d) + (1 - y) * log_sigmoid(-d)
        return ll, y - p, None, p * q, None, None
    tau = params[-1]
    half = 0.5 * d
    # log(e^{d/2} + e^{-d/2}) without overflow; log Z adds ν.
    log_cosh2 = np.abs(half) + np.log1p(np.exp(-np.abs(d)))
    log_z = np.logaddexp(log_cosh2, tau)
    ya, yb, yt = (y == 1.0), (y == 0.0), (y == 0.5)
    ll = np.where(ya, half, np.where(yb, -half, tau)) - log_z
    pa, pb, pt = davidson_probs(d, tau)
    diff = pa - pb
    e_d = 0.5 * (ya.astype(float) - yb) - 0.5 * diff
    e_t = yt - pt
    return ll, e_d, e_t, 0.25 * (pa + pb) - 0.25 * diff * diff, -0.5 * diff * pt, pt * (1 - pt)


def _objective(
    rows: _Rows,
    ridge_theta: float,
    ridge_coef: float,
    prior=None,
    *,
    ties: str = "half",
    tau_ridge: float = 0.0,
    tau_centre: float = 0.0,
):
    """Loss, gradient and Hessian of the negative log-likelihood over (θ, γ[, log ν]).

    The ridge on θ is centred at ``prior`` (zeros unless given), the one on γ at zero and
    the one on log ν (Davidson only, used by the last-resort resample fit) at
    ``tau_centre``.
    """
    n, k = rows.n_models, rows.n_features
    centre = np.zeros(n) if prior is None else prior
    w = rows.w

    def func(params):
        theta, gamma = params[:n], params[n : n + k]
        ll, e_d, e_t, h_dd, h_dt, h_tt = _row_terms(rows, params, ties)
        dev = theta - centre
        loss = -(w @ ll) + 0.5 * ridge_theta * dev @ dev + 0.5 * ridge_coef * gamma @ gamma
        wt = None if e_t is None else w * e_t
        grad = -_gradient(rows, w * e_d, wt)
        grad[:n] += ridge_theta * dev
        grad[n : n + k] += ridge_coef * gamma
        if h_dt is None:
            hess = _assemble(rows, w * h_dd)
        else:
            hess = _assemble(rows, w * h_dd, w * h_dt, w * h_tt)
            tau_dev = params[-1] - tau_centre
            loss += 0.5 * tau_ridge * tau_dev * tau_dev
            grad[-1] += tau_ridge * tau_dev
            hess[-1, -1] += tau_ridge
        hess[np.arange(n), np.arange(n)] += ridge_theta
        hess[np.arange(n, n + k), np.arange(n, n + k)] += ridge_coef
        return loss, grad, hess

    return func


def _score_meat(rows: _Rows, params: np.ndarray, ties: str) -> np.ndarray:
    """Σ over rows of the per-row score's outer product (weights squared), with the
    scores' mean outer product removed: with a ridge they do not sum to zero."""
    _, e_d, e_t, *_ = _row_terms(rows, params, ties)
    e_d = rows.w * e_d
    if e_t is None:
        meat = _assemble(rows, e_d * e_d)
        total = _gradient(rows, e_d)
    else:
        e_t = rows.w * e_t
        meat = _assemble(rows, e_d * e_d, e_d * e_t, e_t * e_t)
        total = _gradient(rows, e_d, e_t)
    return meat - np.outer(total, total) / len(e_d)
