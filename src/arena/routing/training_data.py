"""Preference data as arrays the routers train on, and the default strong/weak pair.

The pair, when not given, is the best and the worst model of a global Bradley–Terry fit
(``arena.ratings``), so a router trained on arena votes routes between the extremes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arena.ratings.battles import Battles
from arena.ratings.bradley_terry import fit_bradley_terry
from arena.routing.data import PreferenceData
from arena.routing.errors import RoutingError

_SCORE = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


@dataclass(frozen=True)
class EncodedBattles:
    """Battles over ``models``: indices, the score of side a (1, 0 or ½ for a tie), weights."""

    models: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    weights: np.ndarray
    battles: Battles


def encode(data: PreferenceData) -> EncodedBattles:
    battles = Battles.from_columns(
        data.model_a.tolist(), data.model_b.tolist(), data.winner.tolist(), weights=data.weights
    )
    score = np.array([_SCORE[w] for w in data.winner.tolist()])
    return EncodedBattles(
        battles.models,
        battles.model_a.astype(np.int64),
        battles.model_b.astype(np.int64),
        score,
        np.asarray(data.weights, dtype=float),
        battles,
    )


def resolve_pair(encoded: EncodedBattles, strong: str | None, weak: str | None) -> tuple[str, str]:
    """The given pair (checked), else the best and worst rated model."""
    for name in (strong, weak):
        if name is not None and name not in encoded.models:
            raise RoutingError(
                f"model {name!r} is not in the training battles ({', '.join(encoded.models)})"
            )
    if strong is not None and weak is not None:
        if strong == weak:
            raise RoutingError("the strong and the weak model must differ")
        return strong, weak
    fit = fit_bradley_terry(encoded.battles)
    order = [encoded.models[i] for i in np.argsort(-fit.theta, kind="stable")]
    strong = strong or next(m for m in order if m != weak)
    weak = weak or next(m for m in reversed(order) if m != strong)
    return strong, weak
