"""Battles as arrays: validation, integer coding and aggregation to unique outcome cells.

Every fit in ``arena.ratings`` starts from a :class:`Battles`. Aggregating to
(pair, outcome) cells first is what makes Bradley–Terry on millions of battles cheap:
for k models there are at most 3·k(k-1)/2 cells, whatever the number of battles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from arena.ratings.errors import RatingInputError

WINNER_CODES: dict[str, int] = {"model_a": 0, "model_b": 1, "tie": 2, "tie (bothbad)": 3}
"""Winner values of the public clean-battle layout and their integer codes."""

A_WINS, B_WINS, TIE, TIE_BOTHBAD = 0, 1, 2, 3

_DENSE_KEYS = 1 << 24

# Canonical cell outcomes, seen from the lower-indexed model i of a pair (i < j).
I_WINS, J_WINS, DRAW = 0, 1, 2


def _as_1d(values: object, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise RatingInputError(f"{name} must be one-dimensional, got shape {arr.shape}", param=name)
    return arr


def _as_arrow(values: object, name: str) -> pa.Array:
    """Any column (list, numpy, pyarrow, polars) as a flat pyarrow array.

    Hash-based dictionary encoding in Arrow is far faster than sorting millions of
    Python or numpy strings, which is what loading battles mostly costs.
    """
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    if hasattr(values, "to_arrow"):  # polars Series
        return _as_arrow(values.to_arrow(), name)
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise RatingInputError(
                f"{name} must be one-dimensional, got shape {values.shape}", param=name
            )
        values = values.tolist()
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise RatingInputError(f"{name} must be a column of strings: {e}", param=name) from e


def _factorize(values: pa.Array) -> tuple[np.ndarray, list]:
    """Integer codes into the sorted distinct values that occur (dictionary input is reused)."""
    encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    dictionary = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    used = np.flatnonzero(np.bincount(codes, minlength=len(dictionary)))
    order = sorted(used.tolist(), key=lambda i: str(dictionary[i]))
    rank = np.full(len(dictionary), -1, dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank[codes], [dictionary[i] for i in order]


def _as_matrix(values: object, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise RatingInputError(
            f"{name} must have shape (n_battles, n_features) = ({n}, k), got {arr.shape}",
            param=name,
        )
    if not np.isfinite(arr).all():
        raise RatingInputError(f"{name} contains NaN or infinite values", param=name)
    return np.ascontiguousarray(arr)


def encode_winners(winner: object) -> np.ndarray:
    """Map winner strings to codes; unknown values raise naming them (never silently dropped)."""
    arr = _as_arrow(winner, "winner")
    if arr.null_count:
        raise RatingInputError(f"winner has {arr.null_count} missing (None) values", param="winner")
    codes, values = _factorize(arr)
    bad = [v for v in values if v not in WINNER_CODES]
    if bad:
        shown = ", ".join(repr(v) for v in bad[:10])
        raise RatingInputError(
            f"unknown winner values: {shown}; expected one of {sorted(WINNER_CODES)}",
            param="winner",
        )
    table = np.array([WINNER_CODES[v] for v in values], dtype=np.int8)
    return table[codes]


@dataclass(frozen=True)
class Battles:
    """Validated battles: model indices, outcome codes and optional weights and style features.

    ``model_a``/``model_b`` index into ``models`` (sorted names). ``outcome`` holds the codes of
    :data:`WINNER_CODES`. Style features come either per side (``features_a``/``features_b``,
    each (n, k): raw values such as answer tokens or markdown counts, normalized by the style
    fit) or ready-made (``features``, (n, k): e.g. differences, only standardized by the fit).
    """

    models: tuple[str, ...]
    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    weights: np.ndarray | None = None
    features: np.ndarray | None = None
    features_a: np.ndarray | None = None
    features_b: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    tstamp: np.ndarray | None = None

    @classmethod
    def from_columns(
        cls,
        model_a: Sequence[str] | np.ndarray,
        model_b: Sequence[str] | np.ndarray,
        winner: Sequence[str] | np.ndarray,
        *,
        weights: Sequence[float] | np.ndarray | None = None,
        features: np.ndarray | None = None,
        feature_names: Sequence[str] | None = None,
        features_a: np.ndarray | None = None,
        features_b: np.ndarray | None = None,
        tstamp: Sequence[float] | np.ndarray | None = None,
    ) -> Battles:
        """Build from column arrays; raises :class:`RatingInputError` on anything unusable."""
        a_arr, b_arr = _as_arrow(model_a, "model_a"), _as_arrow(model_b, "model_b")
        outcome = encode_winners(winner)
        n = len(outcome)
        if not (len(a_arr) == len(b_arr) == n):
            raise RatingInputError(
                f"columns differ in length: model_a {len(a_arr)}, model_b {len(b_arr)}, winner {n}"
            )
        if n == 0:
            raise RatingInputError("no battles to rate")
        if a_arr.null_count or b_arr.null_count:
            raise RatingInputError("model_a/model_b have missing (None) names")
        codes_a, names_a = _factorize(a_arr)
        codes_b, names_b = _factorize(b_arr)
        models = np.array(sorted({str(m) for m in names_a} | {str(m) for m in names_b}))
        code_a = np.searchsorted(models, np.array([str(m) for m in names_a]))[codes_a]
        code_b = np.searchsorted(models, np.array([str(m) for m in names_b]))[codes_b]
        codes = np.concatenate([code_a, code_b]).astype(np.int32)
        same = codes[:n] == codes[n:]
        if same.any():
            raise RatingInputError(
                f"{int(same.sum())} battles pit a model against itself "
                f"(e.g. {models[codes[:n][same][0]]!r}); drop them before rating"
            )
        w = None
        if weights is not None:
            w = _as_1d(weights, "weights").astype(np.float64)
            if len(w) != n:
                raise RatingInputError(f"weights has {len(w)} values for {n} battles")
            if not np.isfinite(w).all() or (w < 0).any():
                raise RatingInputError("weights must be finite and non-negative", param="weights")
            if not (w > 0).any():
                raise RatingInputError("all weights are zero", param="weights")
        if (features_a is None) != (features_b is None):
            raise RatingInputError("give both features_a and features_b, or neither")
        if features is not None and features_a is not None:
            raise RatingInputError("give either features or features_a/features_b, not both")
        fa = fb = f = None
        if features is not None:
            f = _as_matrix(features, n, "features")
            k = f.shape[1]
        elif features_a is not None:
            fa = _as_matrix(features_a, n, "features_a")
            fb = _as_matrix(features_b, n, "features_b")
            if fa.shape != fb.shape:
                raise RatingInputError(f"features_a {fa.shape} and features_b {fb.shape} differ")
            k = fa.shape[1]
        else:
            k = 0
        names: tuple[str, ...] = ()
        if k:
            names = (
                tuple(str(x) for x in feature_names)
                if feature_names is not None
                else tuple(f"feature_{i}" for i in range(k))
            )
            if len(names) != k:
                raise RatingInputError(f"{len(names)} feature_names for {k} feature columns")
        ts = None
        if tstamp is not None:
            ts = _as_1d(tstamp, "tstamp").astype(np.float64)
            if len(ts) != n:
                raise RatingInputError(f"tstamp has {len(ts)} values for {n} battles")
        return cls(
            models=tuple(models.tolist()),
            model_a=codes[:n],
            model_b=codes[n:],
            outcome=outcome,
            weights=w,
            features=f,
            features_a=fa,
            features_b=fb,
            feature_names=names,
            tstamp=ts,
        )

    @property
    def n_battles(self) -> int:
        return len(self.outcome)

    @property
    def n_models(self) -> int:
        return len(self.models)

    def model_index(self, name: str) -> int:
        try:
            return self.models.index(name)
        except ValueError:
            raise RatingInputError(f"model {name!r} is not among the rated models") from None

    def effective_weights(
        self, reweight: str | None = None, min_pair_count: int = 50
    ) -> np.ndarray:
        """Per-battle weights: sample weights times optional inverse-propensity weights.

        ``reweight="ipw"`` weighs each battle by 1 / max(battles of its pair, min_pair_count)
        (pair = unordered model pair), rescaled to mean 1, so over-sampled pairs stop
        dominating the fit; the floor keeps rare pairs from getting huge weights.
        """
        w = np.ones(self.n_battles) if self.weights is None else self.weights.copy()
        if reweight is None:
            return w
        if reweight != "ipw":
            raise RatingInputError(f"unknown reweight {reweight!r}; use None or 'ipw'")
        k = self.n_models
        key = np.minimum(self.model_a, self.model_b).astype(np.int64) * k + np.maximum(
            self.model_a, self.model_b
        )
        counts = np.bincount(key, minlength=k * k)[key].astype(np.float64)
        ipw = 1.0 / np.maximum(counts, float(min_pair_count))
        ipw /= ipw.mean()
        return w * ipw


@dataclass(frozen=True)
class CellTable:
    """Battles aggregated to unique (i < j, outcome) cells, and cells grouped into pairs.

    ``count`` is the number of battles in a cell, ``weight`` their summed weight and
    ``weight_sq`` the sum of squared weights (what a per-battle sandwich variance needs).
    """

    n_models: int
    cell_pair: np.ndarray
    cell_outcome: np.ndarray
    count: np.ndarray
    weight: np.ndarray
    weight_sq: np.ndarray
    pair_i: np.ndarray
    pair_j: np.ndarray

    @property
    def n_pairs(self) -> int:
        return len(self.pair_i)

    def pair_sums(self, cell_values: np.ndarray) -> np.ndarray:
        """Sum per-cell values (last axis) onto pairs."""
        if cell_values.ndim == 1:
            return np.bincount(self.cell_pair, cell_values, minlength=self.n_pairs)
        out = np.zeros((*cell_values.shape[:-1], self.n_pairs))
        for p_out, c in zip(out, cell_values, strict=True):
            p_out[:] = np.bincount(self.cell_pair, c, minlength=self.n_pairs)
        return out

    def outcome_weights(self, cell_weight: np.ndarray | None = None) -> np.ndarray:
        """(3, P) weighted counts per pair: i wins, j wins, draws."""
        w = self.weight if cell_weight is None else cell_weight
        out = np.zeros((3, self.n_pairs))
        for o in (I_WINS, J_WINS, DRAW):
            m = self.cell_outcome == o
            out[o] = np.bincount(self.cell_pair[m], w[m], minlength=self.n_pairs)
        return out


def aggregate(
    battles: Battles, weights: np.ndarray | None = None, *, merge_bothbad: bool = True
) -> CellTable:
    """Aggregate battles to cells; rows that only differ in order or side become one cell."""
    k = battles.n_models
    a, b = battles.model_a.astype(np.int64), battles.model_b.astype(np.int64)
    flip = a > b
    i, j = np.where(flip, b, a), np.where(flip, a, b)
    o = battles.outcome
    canon = np.full(len(o), DRAW, dtype=np.int64)
    canon[o == A_WINS] = I_WINS
    canon[o == B_WINS] = J_WINS
    swap = flip & (canon != DRAW)
    canon[swap] = 1 - canon[swap]
    if not merge_bothbad:
        canon[o == TIE_BOTHBAD] = 3
    key = (i * k + j) * 4 + canon
    w = np.ones(len(o)) if weights is None else weights
    keep = w > 0
    key, w = key[keep], w[keep]
    if k * k * 4 <= _DENSE_KEYS:
        # Counting into the whole key space beats sorting millions of keys.
        dense = np.bincount(key, minlength=k * k * 4)
        uniq = np.flatnonzero(dense)
        count = dense[uniq].astype(np.float64)
        wsum = count if weights is None else np.bincount(key, w, k * k * 4)[uniq]
        wsq = count if weights is None else np.bincount(key, w * w, k * k * 4)[uniq]
    else:
        uniq, inv = np.unique(key, return_inverse=True)
        inv = inv.reshape(-1)
        count = np.bincount(inv, minlength=len(uniq)).astype(np.float64)
        wsum = np.bincount(inv, w, minlength=len(uniq))
        wsq = np.bincount(inv, w**2, minlength=len(uniq))
    pair_key = uniq // 4
    pairs, cell_pair = np.unique(pair_key, return_inverse=True)
    return CellTable(
        n_models=k,
        cell_pair=cell_pair.reshape(-1),
        cell_outcome=(uniq % 4).astype(np.int8),
        count=count,
        weight=wsum,
        weight_sq=wsq,
        pair_i=(pairs // k).astype(np.int64),
        pair_j=(pairs % k).astype(np.int64),
    )


def comparison_components(n_models: int, pair_i: np.ndarray, pair_j: np.ndarray) -> np.ndarray:
    """Component label of each model in the undirected comparison graph."""
    g = coo_matrix((np.ones(len(pair_i)), (pair_i, pair_j)), shape=(n_models, n_models))
    _, labels = connected_components(g, directed=False)
    return labels


def no_finite_optimum(n_models: int, edges_from: np.ndarray, edges_to: np.ndarray) -> np.ndarray:
    """Models whose strongly connected 'beats' component differs from their comparison component.

    A finite maximum-likelihood fit exists exactly when, inside every connected part of the
    comparison graph, each model can reach each other through 'won or drew against' edges
    (Ford's condition); the models returned are those where this fails.
    """
    g = coo_matrix((np.ones(len(edges_from)), (edges_from, edges_to)), shape=(n_models, n_models))
    _, weak = connected_components(g, directed=True, connection="weak")
    _, strong = connected_components(g, directed=True, connection="strong")
    bad = np.zeros(n_models, dtype=bool)
    for comp in np.unique(weak):
        members = weak == comp
        if len(np.unique(strong[members])) > 1:
            bad |= members
    return bad
