"""Bradley–Terry maximum likelihood on aggregated battles, by Newton's method.

Ties count as half a win each way (``ties="half"``) or follow Davidson's tie model
(``ties="davidson"``: P(tie) ∝ ν·sqrt(π_a·π_b), ν fitted). Newton with the exact Hessian
on k models is cheap and converges to the optimum to machine precision, where first-order
solvers stop early on sparse comparison graphs. The shift freedom of the ratings is
removed by centring each connected part of the comparison graph (no ridge), so ratings
average ``init_rating`` unless anchored. A ridge is used only when no finite optimum exists
(a model that never lost, say), and the result then says so in ``warnings``.

Bootstrap resamples (plain, Davidson and style-controlled alike) follow one rule, defined
here: a resample can lack a finite optimum even when the full data have one (a rarely seen
model whose few wins were all left out). Such a round is fitted with a Gaussian prior of
precision ``RESAMPLE_PRIOR_PRECISION`` per model centred at the full-data fit, and the
intervals say how many rounds needed it. Centred there, not at zero, it keeps the
well-measured models where their own battles put them and the stray model near the data,
instead of letting that one model, through the centring, shift every other rating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arena.ratings.battles import (
    DRAW,
    I_WINS,
    J_WINS,
    Battles,
    CellTable,
    aggregate,
    comparison_components,
    no_finite_optimum,
)
from arena.ratings.errors import DegenerateComparisonError, RatingInputError

DEGENERATE_RIDGE = 1e-2
"""Prior precision (natural-log units, per model) used only when the MLE does not exist."""

RESAMPLE_PRIOR_PRECISION = 1.0
"""Precision (natural-log units, per model: sd 1 log-odds, about 174 points at scale 400) of
the Gaussian prior, centred at the full-data fit, for a bootstrap resample whose likelihood
has no finite optimum."""

_TOL = 1e-11
_MAX_ITER = 200


@dataclass(frozen=True)
class RatingFit:
    """A fitted Bradley–Terry model.

    ``ratings`` are on the display scale (``init_rating + scale/ln(base) · theta``); ``theta``
    are natural-log strengths (mean zero per comparison component unless anchored).
    ``hessian`` is the negative log-likelihood Hessian in theta units (with ``tie_param``
    appended as the last row/column for Davidson); intervals reuse it.
    """

    models: tuple[str, ...]
    ratings: np.ndarray
    theta: np.ndarray
    scale: float
    base: float
    init_rating: float
    ties: str
    anchor: tuple[str, float] | None
    tie_param: float | None
    n_battles: int
    iterations: int
    max_abs_gradient: float
    ridge: float
    hessian: np.ndarray
    components: np.ndarray
    warnings: tuple[str, ...] = ()
    # With separation (ridge > 0): the centring onto each part's finite-rated models that
    # turns ``theta`` into displayed ratings (see ``arena.ratings.evidence``); else None.
    projection: np.ndarray | None = None

    @property
    def alpha(self) -> float:
        """Rating points per natural-log unit of strength."""
        return self.scale / math.log(self.base)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.models, self.ratings.tolist(), strict=True))


def centring_matrix(labels: np.ndarray) -> np.ndarray:
    """Σ over components of 1_C 1_Cᵀ / |C|: added to a Laplacian-like Hessian it removes the
    shift freedom while keeping Newton steps inside the sum-zero subspace."""
    same = labels[:, None] == labels[None, :]
    sizes = np.bincount(labels)[labels]
    return same / sizes[:, None]


def pair_laplacian(n: int, pair_i: np.ndarray, pair_j: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Σ_pairs h·(e_i - e_j)(e_i - e_j)ᵀ as a dense n×n matrix."""
    off = np.bincount(pair_i * n + pair_j, h, minlength=n * n).reshape(n, n)
    mat = -(off + off.T)
    mat[np.diag_indices(n)] += np.bincount(pair_i, h, minlength=n) + np.bincount(
        pair_j, h, minlength=n
    )
    return mat


def _newton(func, x0: np.ndarray, fix: np.ndarray) -> tuple[np.ndarray, int, float, np.ndarray]:
    """Damped Newton: ``func(x) -> (loss, grad, hess)``; ``fix`` is added to the Hessian for
    the solve only (the centring matrix, or zeros)."""
    x = x0.copy()
    loss, grad, hess = func(x)
    for it in range(1, _MAX_ITER + 1):
        try:
            step = np.linalg.solve(hess + fix, -grad)
        except np.linalg.LinAlgError:
            # Collinear columns (e.g. duplicated style features): take the min-norm step.
            step = np.linalg.lstsq(hess + fix, -grad, rcond=None)[0]
        t = 1.0
        while True:
            new = x + t * step
            new_loss, new_grad, new_hess = func(new)
            if new_loss <= loss + 1e-12 * abs(loss) or t < 1e-8:
                break
            t *= 0.5
        x, loss, grad, hess = new, new_loss, new_grad, new_hess
        if np.max(np.abs(t * step)) < _TOL:
            return x, it, float(np.max(np.abs(grad))), hess
    return x, _MAX_ITER, float(np.max(np.abs(grad))), hess


def sigmoid(d: np.ndarray) -> np.ndarray:
    """Logistic function via tanh: no overflow warnings, and several times faster than expit."""
    return 0.5 + 0.5 * np.tanh(0.5 * d)


def log_sigmoid(d: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -d)


def half_objective(n: int, pair_i, pair_j, total, wins, ridge: float, centre=None):
    """Negative log-likelihood with ties as half wins, on pair sums (total, wins of i); the
    ridge is centred at ``centre`` (zeros unless given)."""
    centre = np.zeros(n) if centre is None else centre

    def func(theta):
        d = theta[pair_i] - theta[pair_j]
        p = sigmoid(d)
        dev = theta - centre
        loss = -(wins @ log_sigmoid(d) + (total - wins) @ log_sigmoid(-d))
        loss += 0.5 * ridge * dev @ dev
        r = wins - total * p
        grad = -(np.bincount(pair_i, r, minlength=n) - np.bincount(pair_j, r, minlength=n))
        grad += ridge * dev
        hess = pair_laplacian(n, pair_i, pair_j, total * p * (1.0 - p))
        hess[np.diag_indices(n)] += ridge
        return loss, grad, hess

    return func


def davidson_probs(d: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(i wins), P(j wins), P(tie) under Davidson with log ν = tau."""
    m = np.maximum(np.maximum(d / 2, -d / 2), tau)
    ea, eb, et = np.exp(d / 2 - m), np.exp(-d / 2 - m), np.exp(tau - m)
    z = ea + eb + et
    return ea / z, eb / z, et / z


def davidson_objective(n: int, pair_i, pair_j, a_w, b_w, t_w, ridge: float, centre=None):
    """Negative log-likelihood of Davidson's tie model; parameters are (theta, log ν). The
    ridge on theta is centred at ``centre`` (zeros unless given)."""
    tot = a_w + b_w + t_w
    centre = np.zeros(n) if centre is None else centre

    def func(x):
        theta, tau = x[:n], x[n]
        d = theta[pair_i] - theta[pair_j]
        dev = theta - centre
        m = np.maximum(np.maximum(d / 2, -d / 2), tau)
        log_z = m + np.log(np.exp(d / 2 - m) + np.exp(-d / 2 - m) + np.exp(tau - m))
        loss = -(a_w @ (d / 2) - b_w @ (d / 2) + t_w.sum() * tau - tot @ log_z)
        loss += 0.5 * ridge * dev @ dev
        pa, pb, pt = davidson_probs(d, tau)
        gd = (a_w - b_w) / 2 - tot * (pa - pb) / 2
        grad = np.zeros(n + 1)
        grad[:n] = -(np.bincount(pair_i, gd, minlength=n) - np.bincount(pair_j, gd, minlength=n))
        grad[:n] += ridge * dev
        grad[n] = -(t_w.sum() - tot @ pt)
        hdd = tot * ((pa + pb) / 4 - (pa - pb) ** 2 / 4)
        hdt = -tot * (pa - pb) * pt / 2
        hess = np.zeros((n + 1, n + 1))
        hess[:n, :n] = pair_laplacian(n, pair_i, pair_j, hdd)
        hess[np.arange(n), np.arange(n)] += ridge
        cross = np.bincount(pair_i, hdt, minlength=n) - np.bincount(pair_j, hdt, minlength=n)
        hess[:n, n] = hess[n, :n] = cross
        hess[n, n] = tot @ (pt * (1 - pt))
        return loss, grad, hess

    return func


def resample_setup(
    n: int,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    i_mass: np.ndarray,
    j_mass: np.ndarray,
    ridge: float,
) -> tuple[float, np.ndarray, bool]:
    """Ridge and Hessian fix for one resampled data set (pairs can vanish in a resample).

    ``i_mass``/``j_mass``: per pair, weight of results in favour of i (wins or draws) and
    of j. Returns (ridge, fix, regularized) where regularized says the resample alone had
    no finite optimum (the full data having one); the ridge is then
    ``RESAMPLE_PRIOR_PRECISION``, to be centred at the full-data fit.
    """
    seen = (i_mass + j_mass) > 0
    if ridge == 0 and resample_lacks_optimum(n, pair_i, pair_j, i_mass, j_mass):
        return RESAMPLE_PRIOR_PRECISION, np.zeros((n, n)), True
    if ridge > 0:
        return ridge, np.zeros((n, n)), False
    labels = comparison_components(n, pair_i[seen], pair_j[seen])
    return 0.0, centring_matrix(labels), False


def resample_lacks_optimum(
    n: int, pair_i: np.ndarray, pair_j: np.ndarray, i_mass: np.ndarray, j_mass: np.ndarray
) -> bool:
    """Whether one resample's likelihood has no finite optimum (arguments as in
    :func:`resample_setup`)."""
    src = np.concatenate([pair_i[i_mass > 0], pair_j[j_mass > 0]])
    dst = np.concatenate([pair_j[i_mass > 0], pair_i[j_mass > 0]])
    return bool(no_finite_optimum(n, src, dst).any())


def resample_prior_warning(regularized: int, rounds: int) -> str:
    """The warning for bootstrap rounds fitted under the resample prior."""
    return (
        f"{regularized} of {rounds} bootstrap rounds had no finite optimum on their own "
        f"(too few battles) and were fitted with a prior of precision "
        f"{RESAMPLE_PRIOR_PRECISION} centred at the full-data ratings"
    )


def check_identifiable(
    battles: Battles, table: CellTable, on_degenerate: str
) -> tuple[float, list[str]]:
    """Ridge to use (0 unless no finite optimum exists) and the warnings to report."""
    if on_degenerate not in ("regularize", "raise"):
        raise RatingInputError(
            f"on_degenerate must be 'regularize' or 'raise', not {on_degenerate!r}"
        )
    warnings: list[str] = []
    ow = table.outcome_weights()
    i_beats = (ow[I_WINS] + ow[DRAW]) > 0
    j_beats = (ow[J_WINS] + ow[DRAW]) > 0
    src = np.concatenate([table.pair_i[i_beats], table.pair_j[j_beats]])
    dst = np.concatenate([table.pair_j[i_beats], table.pair_i[j_beats]])
    bad = no_finite_optimum(table.n_models, src, dst)
    labels = comparison_components(table.n_models, table.pair_i, table.pair_j)
    n_comp = len(np.unique(labels))
    if n_comp > 1:
        warnings.append(
            f"comparison graph is disconnected ({n_comp} parts); ratings are only comparable "
            f"within a part, each part is centred at the initial rating and ranked on its own"
        )
    if bad.any():
        k = table.n_models
        won = np.bincount(src, minlength=k) > 0
        lost = np.bincount(dst, minlength=k) > 0
        only_wins = [battles.models[m] for m in np.flatnonzero(~lost)]
        only_losses = [battles.models[m] for m in np.flatnonzero(~won)]
        detail = []
        if only_wins:
            detail.append(f"never lost: {', '.join(only_wins[:10])}")
        if only_losses:
            detail.append(f"never won: {', '.join(only_losses[:10])}")
        msg = (
            "no finite maximum-likelihood ratings exist: within a connected part some group of "
            "models never lost (or never won) against the rest"
            + (f" ({'; '.join(detail)})" if detail else "")
        )
        if on_degenerate == "raise":
            raise DegenerateComparisonError(msg)
        warnings.append(
            f"{msg}; fitted with a ridge of {DEGENERATE_RIDGE} so they stay finite, and "
            "their interval is unbounded on the side the data leave open"
        )
        return DEGENERATE_RIDGE, warnings
    return 0.0, warnings


def fit_bradley_terry(
    battles: Battles,
    *,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    ties: str = "half",
    anchor: tuple[str, float] | None = None,
    reweight: str | None = None,
    on_degenerate: str = "regularize",
    min_pair_count: int = 50,
) -> RatingFit:
    """Maximum-likelihood Bradley–Terry ratings.

    ``reweight="ipw"`` applies inverse-propensity weights per model pair (see
    :meth:`Battles.effective_weights`). ``anchor=(model, value)`` shifts all ratings so that
    model sits at value. ``on_degenerate="raise"`` raises
    :class:`DegenerateComparisonError` instead of regularizing when no finite optimum exists.
    """
    return fit_with_table(
        battles,
        scale=scale,
        base=base,
        init_rating=init_rating,
        ties=ties,
        anchor=anchor,
        reweight=reweight,
        on_degenerate=on_degenerate,
        min_pair_count=min_pair_count,
    )[0]


def fit_with_table(
    battles: Battles,
    *,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    ties: str = "half",
    anchor: tuple[str, float] | None = None,
    reweight: str | None = None,
    on_degenerate: str = "regularize",
    min_pair_count: int = 50,
) -> tuple[RatingFit, CellTable]:
    """:func:`fit_bradley_terry` that also returns the aggregated cells (intervals reuse them)."""
    if ties not in ("half", "davidson"):
        raise RatingInputError(f"ties must be 'half' or 'davidson', not {ties!r}", param="ties")
    if scale <= 0 or base <= 1:
        raise RatingInputError("scale must be > 0 and base > 1")
    weights = battles.effective_weights(reweight, min_pair_count)
    if battles.n_battles and not np.any(weights > 0):
        raise RatingInputError(
            "every battle has weight 0: there is nothing to fit", param="weights"
        )
    table = aggregate(battles, weights)
    ridge, warnings = check_identifiable(battles, table, on_degenerate)
    n = battles.n_models
    labels = comparison_components(n, table.pair_i, table.pair_j)
    fix = np.zeros((n, n)) if ridge > 0 else centring_matrix(labels)
    ow = table.outcome_weights()
    tie_param = None
    if ties == "half":
        total = ow.sum(axis=0)
        wins = ow[I_WINS] + 0.5 * ow[DRAW]
        func = half_objective(n, table.pair_i, table.pair_j, total, wins, ridge)
        theta, iters, gmax, hess = _newton(func, np.zeros(n), fix)
    else:
        if ow[DRAW].sum() <= 0 or ow[DRAW].sum() >= ow.sum():
            raise RatingInputError(
                "the Davidson tie model needs both ties and decisive battles", param="ties"
            )
        func = davidson_objective(
            n, table.pair_i, table.pair_j, ow[I_WINS], ow[J_WINS], ow[DRAW], ridge
        )
        fix_full = np.zeros((n + 1, n + 1))
        fix_full[:n, :n] = fix
        x, iters, gmax, hess = _newton(func, np.zeros(n + 1), fix_full)
        theta, tie_param = x[:n], float(math.exp(x[n]))
    if iters >= _MAX_ITER:
        warnings.append(f"Newton stopped after {iters} iterations (max |gradient| {gmax:.2e})")
    alpha = scale / math.log(base)
    projection = None
    if ridge > 0:
        from arena.ratings.evidence import ordered_parts, separation

        parts = ordered_parts(n, table.pair_i, table.pair_j)
        projection = separation(table).projection(parts)
    ratings = init_rating + alpha * (theta if projection is None else projection @ theta)
    if anchor is not None:
        name, value = anchor
        ratings = ratings + (float(value) - ratings[battles.model_index(name)])
    fit = RatingFit(
        models=battles.models,
        ratings=ratings,
        theta=theta,
        scale=float(scale),
        base=float(base),
        init_rating=float(init_rating),
        ties=ties,
        anchor=anchor,
        tie_param=tie_param,
        n_battles=battles.n_battles,
        iterations=iters,
        max_abs_gradient=gmax,
        ridge=ridge,
        hessian=hess,
        components=labels,
        warnings=tuple(warnings),
        projection=projection,
    )
    return fit, table
