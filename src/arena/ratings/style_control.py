"""Style control: a contextual Bradley–Terry with per-battle style features.

P(a beats b) = σ(θ_a - θ_b + xᵀγ), where x holds the battle's style features (answer
length, markdown headers, lists, bold...) and γ their effects. Ratings then measure what
a model wins beyond what its style wins. Ties count as half wins (``ties="half"``) or follow
Davidson's model (``ties="davidson"``): with d = θ_a - θ_b + xᵀγ, P(a), P(b), P(tie) are
proportional to e^{d/2}, e^{-d/2} and ν, log ν fitted with the rest (the plain Davidson fit
when γ = 0).

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
from the full-data optimum with its Hessian held fixed, many rounds per pass
(:mod:`arena.ratings.style_bootstrap`).

Finite optimum, always: as in the plain fit, the full data get a ridge only when no finite
optimum exists (a model that never lost, say). A resample can lack one even when the full
data have it (a rarely seen model whose few wins were all left out); such a round gets a
Gaussian prior of precision ``RESAMPLE_PRIOR_PRECISION`` (1 per model: sd 1 log-odds, about
174 points at scale 400) centred at the full-data ratings, and the result says how many
rounds needed it: the same rule, constant and warning as the plain and Davidson bootstrap
(:mod:`arena.ratings.bradley_terry`). Centring it there, not at zero, keeps the
well-measured models where their own battles put them (their likelihood precision is in
the hundreds) and keeps the stray model near the data instead of thousands of points away,
where through the centring of the ratings it would drag every other bootstrap rating with
it. If style features alone separate a resample, the prior also covers the coefficients
(strictly convex loss).
``coef_ridge`` adds ``coef_ridge · Σw · |γ|²/2`` to the loss; arena-rank uses 1.0
(its ``reg``, on a mean loss); the default 0 is plain maximum likelihood.
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
)
from arena.ratings.bradley_terry import (
    _newton,
    centring_matrix,
    check_identifiable,
    davidson_objective,
    half_objective,
    resample_prior_warning,
)
from arena.ratings.errors import RatingInputError
from arena.ratings.evidence import apply_evidence_limits, ordered_parts, separation
from arena.ratings.intervals import (
    bootstrap_intervals,
    critical_value,
    rank_upper_bound,
    sandwich_intervals,
)
from arena.ratings.style_bootstrap import bootstrap_rounds
from arena.ratings.style_rows import _objective, _score_meat, _sorted_rows

_COLLINEAR_CONDITION = 1e12


@dataclass(frozen=True)
class StyleFit:
    """Style-controlled ratings, their intervals and rank, and the style coefficients.

    ``coefficients`` are in log-odds per unit of the normalized feature (one standard
    deviation for the standardized conventions); multiply by ``scale/ln(base)`` for rating
    points. ``plain_*`` come from the plain Bradley–Terry fit with the same interval method
    and tie model, and ``rank_change = plain_rank - rank`` (positive: the model climbs under
    style control). ``tie_param`` is Davidson's ν (None for ties as half wins).
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
    ties: str = "half"
    tie_param: float | None = None


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
        x = fa - fb
        if normalization != "none":
            total = fa + fb
            if normalization == "fastchat":
                total += 1.0
            total[total == 0] = 1.0
            x /= total
    else:
        raise RatingInputError("style control needs features (features_a/features_b or features)")
    k = x.shape[1]
    if normalization == "none":
        return x, np.zeros(k), np.ones(k)
    mean = x.mean(axis=0)
    x -= mean
    std = np.sqrt(np.einsum("ij,ij->j", x, x) / len(x))
    std = np.where(std == 0, 1.0, std)
    x /= std
    return x, mean, std


def _plain_start(table: CellTable, ridge: float, fix: np.ndarray, size: int, k: int):
    """Starting point: the plain fit on the pair cells (γ = 0), which costs next to nothing
    and saves the style fit a couple of passes over the battles."""
    n, ow = table.n_models, table.outcome_weights()
    start = np.zeros(size)
    if size == n + k:
        wins = ow[I_WINS] + 0.5 * ow[DRAW]
        func = half_objective(n, table.pair_i, table.pair_j, ow.sum(axis=0), wins, ridge)
        start[:n] = _newton(func, np.zeros(n), fix[:n, :n])[0]
    else:
        func = davidson_objective(
            n, table.pair_i, table.pair_j, ow[I_WINS], ow[J_WINS], ow[DRAW], ridge
        )
        plain_fix = np.zeros((n + 1, n + 1))
        plain_fix[:n, :n] = fix[:n, :n]
        plain = _newton(func, np.zeros(n + 1), plain_fix)[0]
        start[:n], start[-1] = plain[:n], plain[n]
    return start


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
    ties: str = "half",
) -> StyleFit:
    """Style-controlled ratings with intervals (``ci="bootstrap"`` or ``"sandwich"``)."""
    if ci not in ("bootstrap", "sandwich"):
        raise RatingInputError(f"ci must be 'bootstrap' or 'sandwich', not {ci!r}", param="ci")
    if ties not in ("half", "davidson"):
        raise RatingInputError(f"ties must be 'half' or 'davidson', not {ties!r}", param="ties")
    if coef_ridge < 0:
        raise RatingInputError("coef_ridge must be >= 0")
    if ci == "bootstrap" and rounds < 2:
        raise RatingInputError("bootstrap needs at least 2 rounds", param="rounds")
    x_all, mean, std = normalize_features(battles, normalization)
    # A feature that never varies (e.g. no bold text in a category) has no effect to fit.
    active = (x_all != x_all[0]).any(axis=0)
    if not active.any():
        raise RatingInputError(
            "style control needs at least one style feature that varies across battles; "
            "here every battle has the same feature values",
            param="features",
        )
    x = x_all if active.all() else x_all[:, active]
    weights = battles.effective_weights(reweight, min_pair_count)
    table = aggregate(battles, weights)
    ridge_t, warnings = check_identifiable(battles, table, on_degenerate)
    n, k = battles.n_models, x.shape[1]
    rows = _sorted_rows(battles, weights, x)
    size = n + k
    if ties == "davidson":
        tie_weight = rows.w @ (rows.y == 0.5)
        if tie_weight <= 0 or tie_weight >= rows.w.sum():
            raise RatingInputError(
                "the Davidson tie model needs both ties and decisive battles", param="ties"
            )
        size += 1
    ridge_c = coef_ridge * float(weights.sum())
    labels = comparison_components(n, table.pair_i, table.pair_j)
    fix = np.zeros((size, size))
    if ridge_t == 0:
        fix[:n, :n] = centring_matrix(labels)
    func = _objective(rows, ridge_t, ridge_c, ties=ties)
    params, iters, gmax, hess = _newton(func, _plain_start(table, ridge_t, fix, size, k), fix)
    if iters >= 200:
        warnings.append(f"Newton stopped after {iters} iterations (max |gradient| {gmax:.2e})")
    alpha = scale / math.log(base)
    amap = np.eye(n) * alpha
    if anchor is not None:
        amap[:, battles.model_index(anchor[0])] -= alpha
    strengths = params[:n]
    if ridge_t > 0:
        # Separation: display every part centred on its finite-rated models, so a runaway
        # model moves nobody (as in the plain fit; see arena.ratings.evidence).
        projection = separation(table).projection(ordered_parts(n, table.pair_i, table.pair_j))
        amap = amap @ projection
        strengths = projection @ strengths
    ratings = init_rating + alpha * strengths
    if anchor is not None:
        ratings = ratings + (float(anchor[1]) - ratings[battles.model_index(anchor[0])])
    # Collinear features (a duplicated column, say) leave the Hessian singular; rounding
    # decides whether inv() notices, so judge by the condition number instead.
    if np.linalg.cond(hess + fix) < _COLLINEAR_CONDITION:
        inv = np.linalg.inv(hess + fix)
    else:
        inv = np.linalg.pinv(hess + fix, rcond=1e-10, hermitian=True)
        warnings.append("style features are collinear; their split of the effect is arbitrary")
    samples = None
    cov = None
    coef = slice(n, n + k)
    if ci == "sandwich":
        cov_all = inv @ _score_meat(rows, params, ties) @ inv
        z = critical_value(confidence, n, simultaneous)
        cov = amap @ cov_all[:n, :n] @ amap.T
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        lower, upper = ratings - z * se, ratings + z * se
        zc = critical_value(confidence, 1, None)
        cse = np.sqrt(np.clip(np.diag(cov_all)[coef], 0, None))
        c_lower, c_upper = params[coef] - zc * cse, params[coef] + zc * cse
    else:
        boot = bootstrap_rounds(
            rows, params, inv, ridge_t, ridge_c, ties=ties, rounds=rounds, seed=seed, n_jobs=n_jobs
        )
        if boot.failed:
            warnings.append(f"{boot.failed} of {rounds} bootstrap rounds did not converge")
        if boot.regularized:
            warnings.append(resample_prior_warning(boot.regularized, rounds))
        base_rating = ratings - amap @ params[:n]
        samples = base_rating + boot.params[:, :n] @ amap.T
        cov = np.cov(samples, rowvar=False)
        a = 1.0 - confidence
        if simultaneous is None:
            lower = np.quantile(samples, a / 2, axis=0)
            upper = np.quantile(samples, 1 - a / 2, axis=0)
        else:
            z = critical_value(confidence, n, simultaneous)
            se = samples.std(axis=0, ddof=1)
            lower, upper = ratings - z * se, ratings + z * se
        c_lower = np.quantile(boot.params[:, coef], a / 2, axis=0)
        c_upper = np.quantile(boot.params[:, coef], 1 - a / 2, axis=0)
    model_cov = amap @ (inv - fix)[:n, :n] @ amap.T
    lower, upper, limits = apply_evidence_limits(
        table,
        ratings,
        lower,
        upper,
        np.sqrt(np.clip(np.diag(model_cov), 0, None)),
        critical_value(confidence, n if simultaneous else 1, simultaneous),
        alpha,
    )
    warnings.extend(limits)
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
            ties=ties,
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
    gamma[active] = params[coef]
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
        ties=ties,
        tie_param=float(math.exp(params[-1])) if ties == "davidson" else None,
    )
