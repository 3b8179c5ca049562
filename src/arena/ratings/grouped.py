"""Bradley–Terry with additive groups: a side's strength is a sum over its members.

Example: in a red-team game a battle pits a player against a model on a prompt, with
side A = {"player": p} and side B = {"model": m, "prompt": q}; in a judge leaderboard,
side A = {"model": a, "judge": j}, side B = {"model": b}. A group named on both sides
shares one set of parameters (the same model can sit on either side).

Strengths are only determined up to the directions the data cannot see (e.g. adding a
constant to every member of a group present on both sides). Newton steps are taken
orthogonally to those directions, so the result is the minimum-norm maximum-likelihood
solution: per-group mean zero in the usual layouts. Intervals are sandwich intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from arena.ratings.battles import A_WINS, B_WINS, encode_winners
from arena.ratings.bradley_terry import DEGENERATE_RIDGE, _newton, log_sigmoid, sigmoid
from arena.ratings.errors import DegenerateComparisonError, RatingInputError
from arena.ratings.intervals import critical_value

_DIVERGED = 20.0  # log-odds on some battle beyond this (5e8:1) means separation, not data


@dataclass(frozen=True)
class GroupRatings:
    labels: tuple[str, ...]
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.labels, self.ratings.tolist(), strict=True))


@dataclass(frozen=True)
class GroupedFit:
    """Per-group ratings (``init_rating + scale/ln(base) · strength``) with intervals."""

    groups: dict[str, GroupRatings]
    n_battles: int
    iterations: int
    max_abs_gradient: float
    ridge: float
    confidence: float
    warnings: tuple[str, ...] = ()


def _labels(values: object, name: str, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) != n:
        raise RatingInputError(f"group {name!r} must be a 1-D column of {n} labels")
    return arr.astype(str)


def one_sided_members(
    x: csr_matrix, y: np.ndarray, wsum: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per member (column): (never lost, never won) wherever it played; a tie is neither."""
    c = x.tocoo()
    keep = (c.data != 0) & (wsum[c.row] > 0)
    rows, cols, signs = c.row[keep], c.col[keep], c.data[keep]
    favourable = np.where(signs > 0, y[rows], 1.0 - y[rows])
    lo = np.full(x.shape[1], np.inf)
    hi = np.full(x.shape[1], -np.inf)
    np.minimum.at(lo, cols, favourable)
    np.maximum.at(hi, cols, favourable)
    return lo == 1.0, hi == 0.0


def fit_grouped_bradley_terry(
    side_a: Mapping[str, Sequence[str] | np.ndarray],
    side_b: Mapping[str, Sequence[str] | np.ndarray],
    winner: Sequence[str] | np.ndarray,
    *,
    weights: Sequence[float] | np.ndarray | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    confidence: float = 0.95,
    ridge: float = 0.0,
    on_degenerate: str = "regularize",
) -> GroupedFit:
    """Fit strengths of every group member; ``winner`` uses the battle winner values.

    ``ridge`` (natural-log units) is an optional Gaussian prior on all strengths, e.g. for
    thousands of rarely seen prompts.
    """
    outcome = encode_winners(winner)
    n = len(outcome)
    if n == 0:
        raise RatingInputError("no battles to rate")
    if not side_a and not side_b:
        raise RatingInputError("give at least one group for a side")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any():
        raise RatingInputError("weights must be finite, non-negative, one per battle")
    names = sorted(set(side_a) | set(side_b))
    vocab: dict[str, np.ndarray] = {}
    offsets: dict[str, int] = {}
    m = 0
    for g in names:
        cols = [_labels(side[g], g, n) for side in (side_a, side_b) if g in side]
        vocab[g] = np.unique(np.concatenate(cols))
        offsets[g] = m
        m += len(vocab[g])
    index_cols, signs = [], []
    for side, sign in ((side_a, 1.0), (side_b, -1.0)):
        for g in sorted(side):
            col = np.searchsorted(vocab[g], _labels(side[g], g, n)) + offsets[g]
            index_cols.append(col)
            signs.append(sign)
    y_code = np.where(outcome == A_WINS, 2, np.where(outcome == B_WINS, 0, 1))
    keys = np.column_stack([*index_cols, y_code])
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    wsum = np.bincount(inv, w, len(uniq))
    wsq = np.bincount(inv, w * w, len(uniq))
    y = uniq[:, -1] / 2.0
    u = len(uniq)
    x = csr_matrix(
        (
            np.repeat(np.array(signs), u),
            (np.tile(np.arange(u), len(signs)), uniq[:, :-1].T.reshape(-1)),
        ),
        shape=(u, m),
    )
    x.sum_duplicates()
    gram = (x.T @ x).toarray()
    evals, evecs = np.linalg.eigh(gram)
    null = evecs[:, evals < 1e-9 * max(evals.max(), 1.0)]
    fix = null @ null.T

    def objective(lam: float):
        def func(theta):
            d = x @ theta
            p, q = sigmoid(d), sigmoid(-d)
            loss = -(wsum @ (y * log_sigmoid(d) + (1 - y) * log_sigmoid(-d)))
            loss += 0.5 * lam * theta @ theta
            grad = -(x.T @ (wsum * (y - p))) + lam * theta
            hess = (x.T @ x.multiply((wsum * p * q)[:, None])).toarray() + lam * np.eye(m)
            return loss, grad, hess

        return func

    warnings: list[str] = []
    lam = float(ridge)
    # A member on the same side of every result has no finite strength: seen at once here,
    # rather than after a full run of Newton steps that can only diverge.
    never_lost, never_won = one_sided_members(x, y, wsum)
    one_sided = lam == 0 and bool((never_lost | never_won).any())
    open_sides = False
    if not one_sided:
        theta, iters, gmax, hess = _newton(
            objective(lam), np.zeros(m), fix if lam == 0 else 0 * fix
        )
    if one_sided or iters >= 200 or np.abs(x @ theta).max() > _DIVERGED:
        msg = (
            "no finite maximum-likelihood strengths: some members only ever won or only "
            "ever lost against the rest"
        )
        if on_degenerate == "raise":
            raise DegenerateComparisonError(msg)
        lam = max(lam, DEGENERATE_RIDGE)
        open_sides = True
        warnings.append(
            f"{msg}; fitted with a ridge of {lam}, and their interval is unbounded on the "
            "side the data leave open"
        )
        theta, iters, gmax, hess = _newton(objective(lam), np.zeros(m), 0 * fix)
    d = x @ theta
    score = y - sigmoid(d)
    meat = (x.T @ x.multiply((wsq * score * score)[:, None])).toarray()
    bread_inv = np.linalg.inv(hess + (fix if lam == 0 else 0 * fix))
    cov = bread_inv @ meat @ bread_inv
    alpha = scale / math.log(base)
    z = critical_value(confidence, 1, None)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    groups = {}
    for g in names:
        sl = slice(offsets[g], offsets[g] + len(vocab[g]))
        r = init_rating + alpha * theta[sl]
        lower, upper = r - z * alpha * se[sl], r + z * alpha * se[sl]
        if open_sides:
            # The ridge keeps the estimate finite, but nothing in the data bounds a member
            # that never lost from above (or one that never won from below).
            upper = np.where(never_lost[sl], np.inf, upper)
            lower = np.where(never_won[sl], -np.inf, lower)
        groups[g] = GroupRatings(
            labels=tuple(vocab[g].tolist()), ratings=r, lower=lower, upper=upper
        )
    return GroupedFit(
        groups=groups,
        n_battles=n,
        iterations=iters,
        max_abs_gradient=gmax,
        ridge=lam,
        confidence=confidence,
        warnings=tuple(warnings),
    )
