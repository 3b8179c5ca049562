"""Style control: a contextual Bradley–Terry with per-battle style features.

P(a beats b) = σ(θ_a - θ_b + xᵀγ), where x holds the battle's style features (answer
length, markdown headers, lists, bold...) and γ their effects. Ratings then measure what
a model wins beyond what its style wins.

Feature layout (see :meth:`Battles.from_columns`): per-side values ``features_a`` and
``features_b``, each (n, k), one column per feature (e.g. assistant tokens, header count,
list count, bold count), or ready-made per-battle values ``features`` (n, k).

Normalization of per-side values:
- ``"reference"`` (the current public arena-rank convention): (a - b) / (a + b), with
  0/0 read as 0, then standardized (mean 0, population standard deviation 1);
- ``"fastchat"`` (FastChat's older convention): (a - b) / (a + b + 1), then standardized;
- ``"none"``: a - b, used as is.
Ready-made ``features`` are standardized for ``"reference"``/``"fastchat"`` and used as is
for ``"none"``.

The fit is exact Newton on all battles (sorted by model pair once, so sums over battles
are contiguous reductions). Bootstrap rounds resample battles with replacement and iterate
from the full-data optimum with its Hessian held fixed, which takes a few gradient passes.
``coef_ridge`` adds ``coef_ridge · Σw · |γ|²/2`` to the loss; arena-rank uses 1.0
(its ``reg``, on a mean loss); the default 0 is plain maximum likelihood.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from arena.ratings.battles import A_WINS, B_WINS, Battles, aggregate, comparison_components
from arena.ratings.bradley_terry import (
    _newton,
    centring_matrix,
    check_identifiable,
    log_sigmoid,
    pair_laplacian,
    sigmoid,
)
from arena.ratings.errors import RatingInputError
from arena.ratings.intervals import (
    bootstrap_intervals,
    critical_value,
    rank_upper_bound,
    sandwich_intervals,
)

_CHORD_TOL = 1e-6  # natural-log units; the error left is ~1e-8 (chord contraction)
_CHORD_MAX = 60


@dataclass(frozen=True)
class StyleFit:
    """Style-controlled ratings, their intervals and rank, and the style coefficients.

    ``coefficients`` are in log-odds per unit of the normalized feature (one standard
    deviation for the standardized conventions); multiply by ``scale/ln(base)`` for rating
    points. ``plain_*`` come from the plain Bradley–Terry fit with the same interval method,
    and ``rank_change = plain_rank - rank`` (positive: the model climbs under style control).
    """

    models: tuple[str, ...]
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    rank: np.ndarray
    feature_names: tuple[str, ...]
    coefficients: dict[str, float]
    coefficient_lower: dict[str, float]
    coefficient_upper: dict[str, float]
    normalization: str
    feature_mean: np.ndarray
    feature_std: np.ndarray
    method: str
    confidence: float
    rounds: int | None
    plain_ratings: np.ndarray | None
    plain_lower: np.ndarray | None
    plain_upper: np.ndarray | None
    plain_rank: np.ndarray | None
    rank_change: np.ndarray | None
    covariance: np.ndarray | None
    samples: np.ndarray | None
    iterations: int
    max_abs_gradient: float
    warnings: tuple[str, ...] = ()


def normalize_features(
    battles: Battles, normalization: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-battle feature matrix under the chosen convention, with the mean and std used."""
    if normalization not in ("reference", "fastchat", "none"):
        raise RatingInputError(
            f"normalization must be 'reference', 'fastchat' or 'none', not {normalization!r}"
        )
    if battles.features is not None:
        x = battles.features.copy()
    elif battles.features_a is not None:
        fa, fb = battles.features_a, battles.features_b
        diff = fa - fb
        if normalization == "reference":
            total = fa + fb
            x = diff / np.where(total == 0, 1.0, total)
        elif normalization == "fastchat":
            total = fa + fb + 1.0
            x = diff / np.where(total == 0, 1.0, total)
        else:
            x = diff
    else:
        raise RatingInputError("style control needs features (features_a/features_b or features)")
    k = x.shape[1]
    if normalization == "none":
        return x, np.zeros(k), np.ones(k)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return (x - mean) / std, mean, std


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


def _objective(rows: _Rows, ridge_theta: float, ridge_coef: float):
    """Loss, gradient and Hessian over (theta, gamma) on the full data."""
    n, k = rows.n_models, rows.x.shape[1]
    cw, y = rows.w, rows.y
    xt = np.ascontiguousarray(rows.x.T)

    def func(params):
        theta, gamma = params[:n], params[n:]
        d = rows.spread(theta[rows.block_a] - theta[rows.block_b]) + rows.x @ gamma
        p, q = sigmoid(d), sigmoid(-d)
        with np.errstate(divide="ignore"):
            ll = y * np.log(p) + (1 - y) * np.log(q)
        if not np.isfinite(ll).all():
            ll = y * log_sigmoid(d) + (1 - y) * log_sigmoid(-d)
        loss = -(cw @ ll) + 0.5 * ridge_theta * theta @ theta + 0.5 * ridge_coef * gamma @ gamma
        r = cw * (y - p)
        grad = np.empty(n + k)
        grad[:n] = -rows.to_models(rows.block_sum(r)) + ridge_theta * theta
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


def fit_style_control(
    battles: Battles,
    *,
    normalization: str = "reference",
    ci: str = "bootstrap",
    rounds: int = 100,
    seed: int = 0,
    confidence: float = 0.95,
    simultaneous: str | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    anchor: tuple[str, float] | None = None,
    reweight: str | None = None,
    coef_ridge: float = 0.0,
    min_pair_count: int = 50,
    on_degenerate: str = "regularize",
    compare_plain: bool = True,
    n_jobs: int | None = None,
) -> StyleFit:
    """Style-controlled ratings with intervals (``ci="bootstrap"`` or ``"sandwich"``)."""
    if ci not in ("bootstrap", "sandwich"):
        raise RatingInputError(f"ci must be 'bootstrap' or 'sandwich', not {ci!r}", param="ci")
    if coef_ridge < 0:
        raise RatingInputError("coef_ridge must be >= 0")
    x_all, mean, std = normalize_features(battles, normalization)
    # A feature that never varies (e.g. no bold text in a category) has no effect to fit.
    active = x_all.std(axis=0) > 0
    if not active.any():
        raise RatingInputError(
            "style control needs at least one style feature that varies across battles; "
            "here every battle has the same feature values",
            param="features",
        )
    x = x_all[:, active]
    weights = battles.effective_weights(reweight, min_pair_count)
    table = aggregate(battles, weights)
    ridge_t, warnings = check_identifiable(battles, table, on_degenerate)
    n, k = battles.n_models, x.shape[1]
    rows = _sorted_rows(battles, weights, x)
    ridge_c = coef_ridge * float(weights.sum())
    labels = comparison_components(n, table.pair_i, table.pair_j)
    fix = np.zeros((n + k, n + k))
    if ridge_t == 0:
        fix[:n, :n] = centring_matrix(labels)
    params, iters, gmax, hess = _newton(_objective(rows, ridge_t, ridge_c), np.zeros(n + k), fix)
    if iters >= 200:
        warnings.append(f"Newton stopped after {iters} iterations (max |gradient| {gmax:.2e})")
    alpha = scale / math.log(base)
    amap = np.eye(n) * alpha
    if anchor is not None:
        amap[:, battles.model_index(anchor[0])] -= alpha
    ratings = init_rating + alpha * params[:n]
    if anchor is not None:
        ratings = ratings + (float(anchor[1]) - ratings[battles.model_index(anchor[0])])
    try:
        inv = np.linalg.inv(hess + fix)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(hess + fix)
        warnings.append("style features are collinear; their split of the effect is arbitrary")
    samples = None
    cov = None
    if ci == "sandwich":
        w, y = rows.w, rows.y
        d = rows.spread(params[rows.block_a] - params[rows.block_b]) + rows.x @ params[n:]
        e = w * (y - sigmoid(d))
        e2 = e * e
        meat = np.empty((n + k, n + k))
        meat[:n, :n] = pair_laplacian(n, rows.block_a, rows.block_b, rows.block_sum(e2))
        cross = rows.to_models(rows.block_sum(e2[:, None] * rows.x))
        meat[:n, n:] = cross
        meat[n:, :n] = cross.T
        meat[n:, n:] = rows.x.T @ (e2[:, None] * rows.x)
        # Centre the scores: with a ridge they do not sum to zero at the optimum.
        total_score = np.concatenate([rows.to_models(rows.block_sum(e)), e @ rows.x])
        meat -= np.outer(total_score, total_score) / len(e)
        cov_all = inv @ meat @ inv
        z = critical_value(confidence, n, simultaneous)
        cov = amap @ cov_all[:n, :n] @ amap.T
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        lower, upper = ratings - z * se, ratings + z * se
        zc = critical_value(confidence, 1, None)
        cse = np.sqrt(np.clip(np.diag(cov_all)[n:], 0, None))
        c_lower, c_upper = params[n:] - zc * cse, params[n:] + zc * cse
    else:
        if rounds < 2:
            raise RatingInputError("bootstrap needs at least 2 rounds", param="rounds")
        seeds = np.random.SeedSequence(seed).spawn(rounds)
        n_rows = len(rows.y)

        def one_round(idx: int) -> tuple[np.ndarray, bool]:
            rng = np.random.default_rng(seeds[idx])
            counts = np.bincount(rng.integers(0, n_rows, n_rows), minlength=n_rows)
            sub = rows.subset(counts)
            p = params.copy()
            for _ in range(_CHORD_MAX):
                step = inv @ sub.gradient(p, ridge_t, ridge_c)
                p += step
                if np.max(np.abs(step)) < _CHORD_TOL:
                    return p, True
            reweighted = _Rows(**{**rows.__dict__, "w": rows.w * counts})
            p, it, _, _ = _newton(_objective(reweighted, ridge_t, ridge_c), params, fix)
            return p, it < 200

        jobs = max(1, min(os.cpu_count() or 1, 4)) if n_jobs is None else max(1, n_jobs)
        with ThreadPoolExecutor(jobs) as pool:
            results = list(pool.map(one_round, range(rounds)))
        boot = np.stack([r[0] for r in results])
        failed = sum(not r[1] for r in results)
        if failed:
            warnings.append(f"{failed} of {rounds} bootstrap rounds did not converge")
        base_rating = ratings - amap @ params[:n]
        samples = base_rating + boot[:, :n] @ amap.T
        cov = np.cov(samples, rowvar=False)
        a = 1.0 - confidence
        if simultaneous is None:
            lower = np.quantile(samples, a / 2, axis=0)
            upper = np.quantile(samples, 1 - a / 2, axis=0)
        else:
            z = critical_value(confidence, n, simultaneous)
            se = samples.std(axis=0, ddof=1)
            lower, upper = ratings - z * se, ratings + z * se
        c_lower = np.quantile(boot[:, n:], a / 2, axis=0)
        c_upper = np.quantile(boot[:, n:], 1 - a / 2, axis=0)
    rank = rank_upper_bound(lower, upper)
    plain = plain_rank = rank_change = None
    if compare_plain:
        common = dict(
            confidence=confidence,
            simultaneous=simultaneous,
            scale=scale,
            base=base,
            init_rating=init_rating,
            anchor=anchor,
            reweight=reweight,
            min_pair_count=min_pair_count,
            on_degenerate=on_degenerate,
        )
        plain = (
            sandwich_intervals(battles, **common)
            if ci == "sandwich"
            else bootstrap_intervals(battles, rounds=rounds, seed=seed, n_jobs=n_jobs, **common)
        )
        plain_rank = rank_upper_bound(plain.lower, plain.upper)
        rank_change = plain_rank - rank
    names = battles.feature_names
    for name in (str(v) for v in np.array(names)[~active]):
        warnings.append(f"feature {name!r} is constant in these battles; left out of the fit")
    gamma = np.zeros(len(names))
    gamma[active] = params[n:]
    c_lower_all, c_upper_all = np.zeros(len(names)), np.zeros(len(names))
    c_lower_all[active], c_upper_all[active] = c_lower, c_upper
    c_lower, c_upper = c_lower_all, c_upper_all
    return StyleFit(
        models=battles.models,
        ratings=ratings,
        lower=lower,
        upper=upper,
        rank=rank,
        feature_names=names,
        coefficients=dict(zip(names, gamma.tolist(), strict=True)),
        coefficient_lower=dict(zip(names, np.asarray(c_lower).tolist(), strict=True)),
        coefficient_upper=dict(zip(names, np.asarray(c_upper).tolist(), strict=True)),
        normalization=normalization,
        feature_mean=mean,
        feature_std=std,
        method=ci,
        confidence=confidence,
        rounds=rounds if ci == "bootstrap" else None,
        plain_ratings=None if plain is None else plain.ratings,
        plain_lower=None if plain is None else plain.lower,
        plain_upper=None if plain is None else plain.upper,
        plain_rank=plain_rank,
        rank_change=rank_change,
        covariance=cov,
        samples=samples,
        iterations=iters,
        max_abs_gradient=gmax,
        warnings=tuple(warnings),
    )
