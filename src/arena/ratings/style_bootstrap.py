"""Bootstrap rounds of the style-controlled fit, a block of rounds per pass over the battles.

Each round resamples battles with replacement (its own generator, spawned from the seed, so
results do not depend on threads). Rounds start at the full-data optimum p₀ and take chord
steps p ← p + H₀⁻¹ g(p) with the full-data Hessian H₀ held fixed: a round's Hessian is
close to H₀, so two or three passes reach its optimum. A round stops when the chord's own
contraction puts it within ``_CHORD_TOL`` of its optimum.

A pass handles a block of rounds at once, over chunks of battles small enough to stay in
cache. The gradient is the float64 gradient at p₀ (taken once per round) plus its change
since, computed from the change in d by addition formulas (so rounding hits the change,
not the values). On large data (``_FLOAT32_MIN_ROWS`` battles and more) the change is
computed in float32: a round then lands within about 2e-7 log units (4e-5 rating points)
of its exact optimum, while float32 halves the memory traffic and makes ``tanh`` several
times faster. Smaller data, where that rounding would weigh more and speed matters less,
use float64. Products inside a pass use ``einsum``, never a threaded BLAS: several rounds'
threads calling a multithreaded BLAS on a busy machine stall each other many times over.

A round whose resample has no finite optimum is fitted by Newton under the resample prior
(:data:`arena.ratings.bradley_terry.RESAMPLE_PRIOR_PRECISION`, centred at the full-data
ratings), and so is, without the prior, a round the chord does not settle.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from arena.ratings.bradley_terry import (
    _MAX_ITER,
    RESAMPLE_PRIOR_PRECISION,
    _newton,
    resample_setup,
)
from arena.ratings.style_rows import _objective, _row_terms, _Rows

_CHORD_TOL = 1e-6  # estimated distance to the round's optimum, log units (2e-4 points)
_CHORD_MAX = 60
_FLOAT32_MIN_ROWS = 1 << 17  # fewer battles: passes in float64 (see the module docstring)
_BLOCK_ELEMENTS = 1 << 24  # rounds × battles held per block (64 MiB of float32)
_CHUNK_ELEMENTS = 1 << 17  # rounds × battles per chunk of a pass (fits in L2 cache)


@dataclass(frozen=True)
class BootResult:
    params: np.ndarray  # rounds × parameters
    failed: int
    regularized: int


class _Engine:
    """What every pass needs, prepared once per fit."""

    def __init__(self, rows: _Rows, params, inv, ridge_t, ridge_c, ties, block_rounds):
        self.rows, self.p0, self.inv, self.ties = rows, params, inv, ties
        self.ridge_t, self.ridge_c = ridge_t, ridge_c
        n, k, size = rows.n_models, rows.n_features, len(rows.y)
        self.n, self.k, self.size = n, k, size
        self.float = np.float32 if size >= _FLOAT32_MIN_ROWS else np.float64
        self.xt_pass = rows.xt.astype(self.float)
        self.block_of = np.repeat(np.arange(len(rows.starts)), rows.lengths)
        self.w_pass = None if np.all(rows.w == 1.0) else rows.w.astype(self.float)
        self.pos = (rows.y > 0).astype(self.float)
        self.neg = (rows.y < 1).astype(self.float)
        _, e_d, e_t, *_ = _row_terms(rows, params, ties)
        self.e_d, self.e_t = rows.w * e_d, None if e_t is None else rows.w * e_t
        # Per battle at p₀: t₀ = tanh(d₀/2) and 1 - t₀² (and for Davidson the
        # same for q₀/2, where q₀ = log ν - log(2 cosh(d₀/2)) and P(tie) = σ(q₀)).
        half_d0 = 0.5 * rows.d(params)
        self.t0, self.sech0 = _tanh_and_sech2(half_d0, self.float)
        if ties == "davidson":
            log_cosh2 = np.abs(half_d0) + np.log1p(np.exp(-2 * np.abs(half_d0)))
            q0 = params[-1] - log_cosh2
            self.tq0, self.sechq0 = _tanh_and_sech2(0.5 * q0, self.float)
            self.pt0 = (0.5 + 0.5 * np.tanh(0.5 * q0)).astype(self.float)
        n_blocks = len(rows.starts)
        blocks = np.arange(n_blocks)
        self.to_models = csr_matrix(  # block sums -> Σ value·(e_a - e_b)
            (
                np.r_[np.ones(n_blocks), -np.ones(n_blocks)],
                (np.r_[rows.block_a, rows.block_b], np.r_[blocks, blocks]),
            ),
            shape=(n, n_blocks),
        )
        step = max(256, _CHUNK_ELEMENTS // block_rounds)
        self.chunks = []
        for c0 in range(0, size, step):
            c1 = min(size, c0 + step)
            first, last = self.block_of[c0], self.block_of[c1 - 1]
            local = np.r_[0, rows.starts[first + 1 : last + 1] - c0]
            self.chunks.append((c0, c1, first, last, local))

    def sums(self, values: np.ndarray, bsum: np.ndarray, first, last, local) -> None:
        """Add each round's sums over the pair blocks of one chunk (accumulated in float64)."""
        bsum[:, first : last + 1] += np.add.reduceat(values, local, axis=1, dtype=np.float64)

    def gradient_at_start(self, counts: np.ndarray):
        """Per round: float64 log-likelihood gradient at p₀, and the weight of results in
        favour of a (wins and ties) and of b, per pair block."""
        rows, b = self.rows, len(counts)
        n_blocks = len(rows.starts)
        bsum = np.zeros((b, n_blocks))
        i_mass, j_mass = np.zeros((b, n_blocks)), np.zeros((b, n_blocks))
        g_coef = np.zeros((b, self.k))
        g_tie = np.zeros(b)
        for c0, c1, first, last, local in self.chunks:
            c = counts[:, c0:c1]
            e = c * self.e_d[c0:c1]
            self.sums(e, bsum, first, last, local)
            g_coef += np.einsum("bl,kl->bk", e, rows.xt[:, c0:c1])
            if self.e_t is not None:
                g_tie += np.einsum("bl,l->b", c, self.e_t[c0:c1])
            weighted = c if self.w_pass is None else c * self.w_pass[c0:c1]
            self.sums(weighted * self.pos[c0:c1], i_mass, first, last, local)
            self.sums(weighted * self.neg[c0:c1], j_mass, first, last, local)
        grad = np.concatenate([(self.to_models @ bsum.T).T, g_coef], axis=1)
        if self.e_t is not None:
            grad = np.concatenate([grad, g_tie[:, None]], axis=1)
        return grad, i_mass, j_mass

    def gradient_change(self, counts: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Per round: g(params) - g(p₀), in the passes' precision.

        With δ = (d - d₀)/2, tanh(d/2) - t₀ = tanh δ·(1 - t₀²)/(1 + t₀·tanh δ): the change
        comes out with the float's relative precision, not as a difference of rounded values.
        """
        rows, b, n, k = self.rows, len(counts), self.n, self.k
        shift = 0.5 * (params - self.p0)
        dtheta = (shift[:, rows.block_a] - shift[:, rows.block_b]).astype(self.float)
        dgamma = shift[:, n : n + k].astype(self.float)
        davidson = self.ties == "davidson"
        dtau = (params[:, -1:] - self.p0[-1]).astype(self.float) if davidson else None
        bsum = np.zeros((b, len(rows.starts)))
        g_coef = np.zeros((b, k))
        g_tie = np.zeros(b)
        scratch: dict[int, tuple[np.ndarray, ...]] = {}
        for c0, c1, first, last, local in self.chunks:
            width = c1 - c0
            if width not in scratch:
                scratch[width] = tuple(np.empty((b, width), self.float) for _ in range(4))
            u, v, w, z = scratch[width]
            span = slice(c0, c1)
            np.einsum("bk,kl->bl", dgamma, self.xt_pass[:, span], out=u)
            np.take(dtheta, self.block_of[span], axis=1, out=v, mode="clip")
            u += v
            np.tanh(u, out=u)  # tanh δ
            np.multiply(u, self.t0[span], out=v)
            if davidson:
                # log(2cosh(d/2)) changes by log1p(t₀·tanh δ) - ½·log1p(-tanh²δ).
                np.log1p(v, out=w)
                np.multiply(u, u, out=z)
                np.negative(z, out=z)
                np.log1p(z, out=z)
                z *= 0.5
                w -= z
            v += 1.0
            u *= self.sech0[span]
            u /= v  # change of tanh(d/2)
            if davidson:
                # q = log ν - log(2cosh(d/2)); P(tie) = σ(q) changes like tanh above.
                np.subtract(dtau, w, out=w)
                w *= 0.5
                np.tanh(w, out=w)
                np.multiply(w, self.tq0[span], out=v)
                v += 1.0
                w *= self.sechq0[span]
                w /= v
                w *= 0.5  # change of P(tie)
                # pa - pb = tanh(d/2)·(1 - P(tie)): its change from the two above.
                np.add(w, self.pt0[span], out=v)
                np.subtract(1.0, v, out=v)
                u *= v
                np.multiply(w, self.t0[span], out=z)
                u -= z
            cw = counts[:, span] if self.w_pass is None else counts[:, span] * self.w_pass[span]
            u *= cw
            self.sums(u, bsum, first, last, local)
            g_coef += np.einsum("bl,kl->bk", u, self.xt_pass[:, span])
            if davidson:
                w *= cw
                g_tie += w.sum(axis=1, dtype=np.float64)
        # Scores: ½(s - tanh(d/2)) (half) or ½(s - (pa - pb)) in d, and tie - P(tie).
        parts = [-0.5 * (self.to_models @ bsum.T).T, -0.5 * g_coef]
        if davidson:
            parts.append(-g_tie[:, None])
        return np.concatenate(parts, axis=1)

    def ridge(self, params: np.ndarray) -> np.ndarray:
        out = np.zeros_like(params)
        out[:, : self.n] = self.ridge_t * params[:, : self.n]
        out[:, self.n : self.n + self.k] = self.ridge_c * params[:, self.n : self.n + self.k]
        return out

    def solve(self, grad: np.ndarray) -> np.ndarray:
        """Chord steps H₀⁻¹ g for a block of rounds (H₀⁻¹ is symmetric)."""
        return np.einsum("bp,pq->bq", grad, self.inv)

    def chord(self, counts: np.ndarray, grad0: np.ndarray):
        """Chord iterations for a block of rounds: (params, converged).

        The distance left after a step s is about s·ρ/(1 - ρ), ρ the contraction per step,
        taken as the largest ratio of successive steps seen so far, and only once there are
        two: early steps can shrink much faster than later ones and promise too much.
        Below ``floor`` a step is the float's own rounding.
        """
        rounds = len(counts)
        floor = 1e-6 if self.float == np.float32 else 1e-10
        params = np.tile(self.p0, (rounds, 1))
        step = self.solve(grad0 - self.ridge(params))
        params += step
        size = np.abs(step).max(axis=1)
        rho = np.zeros(rounds)  # largest ratio of successive steps so far
        passes = np.zeros(rounds, dtype=int)
        done = size < floor
        active = np.flatnonzero(~done)
        held, held_ids = counts, np.arange(rounds)  # counts of the rounds still iterating
        for _ in range(_CHORD_MAX):
            if len(active) == 0:
                break
            if len(active) < len(held_ids):
                held, held_ids = held[np.isin(held_ids, active)], active
            p = params[active]
            grad = grad0[active] + self.gradient_change(held, p) - self.ridge(p)
            step = self.solve(grad)
            params[active] = p + step
            new = np.abs(step).max(axis=1)
            rho[active] = np.maximum(rho[active], new / size[active])
            r = np.where(passes[active] > 0, rho[active], np.inf)
            passes[active] += 1
            settled = (new < floor) | ((r < 1) & (new * r < _CHORD_TOL * (1 - r)))
            size[active] = new
            done[active[settled]] = True
            active = active[~settled]
        return params, done


def _tanh_and_sech2(v: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """tanh v and 1 - tanh² v (= 4e^{-2|v|}/(1 + e^{-2|v|})², exact for large |v|)."""
    e = np.exp(-2 * np.abs(v))
    return np.tanh(v).astype(dtype), (4 * e / (1 + e) ** 2).astype(dtype)


def _round_counts(seed: np.random.SeedSequence, size: int) -> np.ndarray:
    """One round's multiplicities: ``size`` draws with replacement among the battles."""
    rng = np.random.default_rng(seed)
    return np.bincount(rng.integers(0, size, size), minlength=size)


def _fit_resample(
    rows: _Rows,
    cw: np.ndarray,
    params: np.ndarray,
    ridge_t: float,
    ridge_c: float,
    ties: str = "half",
    fix_t: np.ndarray | None = None,
    regularized: bool = False,
) -> tuple[np.ndarray, bool, bool]:
    """Newton fit of one resample (weights ``cw``): (parameters, converged, regularized).

    ``regularized``: the resample has no finite optimum on its own (see
    :func:`arena.ratings.bradley_terry.resample_setup`), so it gets the resample prior,
    centred at the full-data ratings; without it, iterating would send a model towards
    -inf and, through the centring, every other rating upwards.
    """
    n, m = rows.n_models, len(params)
    reweighted = rows.reweighted(cw)
    fix = np.zeros((m, m))
    if regularized:
        func = _objective(reweighted, RESAMPLE_PRIOR_PRECISION, ridge_c, params[:n], ties=ties)
    else:
        if fix_t is not None:
            fix[:n, :n] = fix_t
        func = _objective(reweighted, ridge_t, ridge_c, ties=ties)
    p, it, _, _ = _newton(func, params, fix)
    if it < _MAX_ITER:
        return p, True, regularized
    # Style features alone (or a resample without ties, for log ν) can leave no finite
    # optimum: the prior on every parameter makes the loss strictly convex and coercive.
    func = _objective(
        reweighted,
        RESAMPLE_PRIOR_PRECISION,
        ridge_c + RESAMPLE_PRIOR_PRECISION,
        params[:n],
        ties=ties,
        tau_ridge=RESAMPLE_PRIOR_PRECISION,
        tau_centre=params[-1],
    )
    p, it, _, _ = _newton(func, params, np.zeros((m, m)))
    return p, it < _MAX_ITER, True


def bootstrap_rounds(
    rows: _Rows,
    params: np.ndarray,
    inv: np.ndarray,
    ridge_t: float,
    ridge_c: float,
    *,
    ties: str,
    rounds: int,
    seed: int,
    n_jobs: int | None,
) -> BootResult:
    """Fitted parameters of ``rounds`` resamples (rows × parameters), seeded."""
    size = len(rows.y)
    block = int(max(1, min(32, _BLOCK_ELEMENTS // max(size, 1))))
    engine = _Engine(rows, params, inv, ridge_t, ridge_c, ties, block)
    seeds = np.random.SeedSequence(seed).spawn(rounds)
    starts = list(range(0, rounds, block))

    def run_block(first: int):
        ids = range(first, min(rounds, first + block))
        counts = np.empty((len(ids), size), engine.float)
        for row, r in enumerate(ids):
            counts[row] = _round_counts(seeds[r], size)
        grad0, i_mass, j_mass = engine.gradient_at_start(counts)
        setups = [
            resample_setup(rows.n_models, rows.block_a, rows.block_b, i, j, ridge_t)
            for i, j in zip(i_mass, j_mass, strict=True)
        ]
        plain = np.array([not s[2] for s in setups])
        out = np.empty((len(ids), len(params)))
        ok = np.zeros(len(ids), dtype=bool)
        if plain.all():
            out, ok = engine.chord(counts, grad0)
        elif plain.any():
            out[plain], ok[plain] = engine.chord(counts[plain], grad0[plain])
        failed = regularized = 0
        for row in np.flatnonzero(~ok):
            cw = counts[row].astype(np.float64) * rows.w
            _, fix_t, reg = setups[row]
            out[row], conv, reg = _fit_resample(
                rows, cw, params, ridge_t, ridge_c, ties, fix_t, reg
            )
            failed += not conv
            regularized += reg
        return out, failed, regularized

    jobs = max(1, min(os.cpu_count() or 1, 4)) if n_jobs is None else max(1, n_jobs)
    with ThreadPoolExecutor(jobs) as pool:
        results = list(pool.map(run_block, starts))
    return BootResult(
        params=np.concatenate([r[0] for r in results]),
        failed=sum(r[1] for r in results),
        regularized=sum(r[2] for r in results),
    )
