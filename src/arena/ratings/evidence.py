"""What the battles can and cannot say about each model, whatever the interval method.

Three limits no resampling or sandwich can see on its own:

- **Separation.** A model (or group) that never lost to the rest of its connected part has
  no finite maximum-likelihood rating: the likelihood keeps rising as it moves up. Its upper
  bound is unbounded (+inf), however narrow a regularized fit's interval looks. Likewise a
  model that never won gets an unbounded lower bound. The reference is each part's largest
  group of models that all reach each other through "won or drew against" edges; groups
  upstream of it (they only beat it) are unbounded above, groups downstream unbounded
  below, and groups on neither side unbounded both ways.
- **No decisive battle.** A model whose battles are all ties has an empirical score
  variance of zero, so the sandwich and the bootstrap both report zero spread (a model
  with one tie would copy its opponent's interval). Its interval is the model-based one
  (inverse Fisher information), the variance the Bradley–Terry model itself implies.
- **Disconnected graph.** Ratings in different connected parts are not comparable; parts
  are numbered by size (1 = largest) so each can be ranked on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from arena.ratings.battles import DRAW, I_WINS, J_WINS, CellTable
from arena.ratings.bradley_terry import log_sigmoid


def beats_edges(table: CellTable) -> tuple[np.ndarray, np.ndarray]:
    """Directed 'won or drew against' edges (from, to) of the aggregated battles."""
    ow = table.outcome_weights()
    i_beats = (ow[I_WINS] + ow[DRAW]) > 0
    j_beats = (ow[J_WINS] + ow[DRAW]) > 0
    src = np.concatenate([table.pair_i[i_beats], table.pair_j[j_beats]])
    dst = np.concatenate([table.pair_j[i_beats], table.pair_i[j_beats]])
    return src, dst


@dataclass(frozen=True)
class Separation:
    """Per model: upper / lower bound unbounded, and membership of its part's reference group
    (the models whose ratings stay finite; every model when the part has no separation)."""

    above: np.ndarray
    below: np.ndarray
    reference: np.ndarray

    @property
    def any(self) -> bool:
        return bool(self.above.any() or self.below.any())

    def projection(self, parts: np.ndarray) -> np.ndarray:
        """I - P, with P averaging over the reference models of each part: applied to
        strengths it centres every part on its finite-rated models, so a runaway model
        does not shift everyone else's displayed rating."""
        n = len(parts)
        same = parts[:, None] == parts[None, :]
        weight = same & self.reference[None, :]
        counts = np.maximum(weight.sum(axis=1, keepdims=True), 1)
        return np.eye(n) - weight / counts


def separation(table: CellTable) -> Separation:
    """Which rating bounds the battles leave open (see the module docstring)."""
    n = table.n_models
    src, dst = beats_edges(table)
    g = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n)).tocsr()
    played = np.zeros(n, dtype=bool)
    played[table.pair_i] = played[table.pair_j] = True
    parts = ordered_parts(n, table.pair_i, table.pair_j)
    n_strong, strong = connected_components(g, directed=True, connection="strong")
    above = np.zeros(n, dtype=bool)
    below = np.zeros(n, dtype=bool)
    reference = np.ones(n, dtype=bool)
    keep = strong[src] != strong[dst]
    dag = coo_matrix(
        (np.ones(int(keep.sum())), (strong[src[keep]], strong[dst[keep]])),
        shape=(n_strong, n_strong),
    ).tocsr()
    for part in np.unique(parts):
        members = np.flatnonzero((parts == part) & played)
        groups, sizes = np.unique(strong[members], return_counts=True)
        if len(groups) <= 1:
            continue
        if sizes.max() == 1:
            # No two models pin each other down: nothing in this part is estimable.
            above[members] = below[members] = True
            continue
        ref = int(groups[np.argmax(sizes)])
        downstream = set(breadth_first_order(dag, ref, return_predecessors=False).tolist())
        upstream = set(breadth_first_order(dag.T.tocsr(), ref, return_predecessors=False).tolist())
        for m in members:
            group = int(strong[m])
            if group == ref:
                continue
            reference[m] = False
            above[m] = group in upstream or group not in downstream
            below[m] = group in downstream or group not in upstream
    return Separation(above, below, reference)


def without_decisive_battle(table: CellTable) -> np.ndarray:
    """Per model: has battles, all of them ties."""
    n = table.n_models
    decisive = table.cell_outcome != DRAW
    played = np.zeros(n, dtype=bool)
    played[table.pair_i] = played[table.pair_j] = True
    cells_i = table.pair_i[table.cell_pair[decisive]]
    cells_j = table.pair_j[table.cell_pair[decisive]]
    won_or_lost = np.zeros(n, dtype=bool)
    won_or_lost[cells_i] = won_or_lost[cells_j] = True
    return played & ~won_or_lost


def ordered_parts(n_models: int, pair_i: np.ndarray, pair_j: np.ndarray) -> np.ndarray:
    """Connected part of each model, numbered 1.. by size (models, largest first)."""
    g = coo_matrix((np.ones(len(pair_i)), (pair_i, pair_j)), shape=(n_models, n_models))
    _, labels = connected_components(g, directed=False)
    sizes = np.bincount(labels)
    order = sorted(range(len(sizes)), key=lambda c: (-sizes[c], np.flatnonzero(labels == c)[0]))
    number = np.empty(len(sizes), dtype=np.int64)
    number[order] = np.arange(1, len(sizes) + 1)
    return number[labels]


def apply_evidence_limits(
    table: CellTable,
    ratings: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    model_se: np.ndarray,
    z: float,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Bounds with the limits above applied, and the warnings that say so (separation is
    already reported by the fit itself).

    ``model_se`` is each rating's model-based standard error (display scale), ``z`` the
    interval's critical value and ``alpha`` rating points per log-odds unit.
    """
    lower, upper = np.array(lower, dtype=float), np.array(upper, dtype=float)
    warnings: list[str] = []
    ties_only = without_decisive_battle(table)
    if ties_only.any():
        lower[ties_only] = ratings[ties_only] - z * model_se[ties_only]
        upper[ties_only] = ratings[ties_only] + z * model_se[ties_only]
        warnings.append(
            f"{int(ties_only.sum())} model(s) have only tied battles; their intervals are "
            "model-based (inverse Fisher information), since the data show no spread"
        )
    sep = separation(table)
    upper[sep.above] = np.inf
    lower[sep.below] = -np.inf
    for m in np.flatnonzero(sep.above ^ sep.below):
        bound = _likelihood_bound(table, ratings, int(m), alpha, z, upward=bool(sep.above[m]))
        if sep.above[m]:
            lower[m] = bound
        else:
            upper[m] = bound
    return lower, upper, warnings


def _likelihood_bound(
    table: CellTable, ratings: np.ndarray, m: int, alpha: float, z: float, *, upward: bool
) -> float:
    """The finite bound of a model that only ever won (``upward``) or only ever lost.

    Its likelihood tends to its supremum as the rating runs away, so the bound is where the
    likelihood ratio to that supremum reaches z²/2, with the opponents held at their
    ratings (a profile in this model's rating alone). A model in a larger separated group,
    or with mixed results, gets no finite side (-inf/+inf).
    """
    ow = table.outcome_weights()
    mine_i, mine_j = table.pair_i == m, table.pair_j == m
    opponents = np.concatenate([table.pair_j[mine_i], table.pair_i[mine_j]])
    wins = np.concatenate([ow[I_WINS][mine_i], ow[J_WINS][mine_j]])
    losses = np.concatenate([ow[J_WINS][mine_i], ow[I_WINS][mine_j]])
    draws = np.concatenate([ow[DRAW][mine_i], ow[DRAW][mine_j]])
    favourable, unfavourable = (wins, losses) if upward else (losses, wins)
    if unfavourable.sum() + draws.sum() > 0 or favourable.sum() == 0:
        return -np.inf if upward else np.inf
    sign = 1.0 if upward else -1.0
    opp = ratings[opponents]

    def gap(t: float) -> float:
        return float(favourable @ log_sigmoid(sign * (t - opp) / alpha)) + z * z / 2

    span = 60.0 * alpha
    return float(brentq(gap, opp.min() - span, opp.max() + span))
