"""Training a router by name from preference data.

``ROUTERS`` names what ``arena route train --router`` accepts. Without a featuriser given, an
offline TF-IDF is fitted on the training prompts.
"""

from __future__ import annotations

from typing import Any

from arena.routing.classifier import ClassifierRouter
from arena.routing.data import PreferenceData
from arena.routing.errors import RoutingError
from arena.routing.factorization import FactorizationRouter
from arena.routing.featurizers import TfidfFeaturizer
from arena.routing.router import RandomRouter, Router
from arena.routing.similarity import SimilarityRouter
from arena.routing.training_data import encode, resolve_pair

ROUTERS = ("random", "sw-ranking", "mf", "classifier")


def train_router(
    kind: str,
    data: PreferenceData,
    *,
    featurizer: Any = None,
    strong: str | None = None,
    weak: str | None = None,
    seed: int = 0,
    **params: Any,
) -> Router:
    """A router of ``kind`` trained on ``data`` (``params``: the kind's hyperparameters)."""
    if kind not in ROUTERS:
        raise RoutingError(f"unknown router {kind!r}; use one of {', '.join(ROUTERS)}")
    encoded = encode(data)
    strong, weak = resolve_pair(encoded, strong, weak)
    if kind == "random":
        return RandomRouter(encoded.models, strong, weak, seed=seed)
    if featurizer is None:
        featurizer = TfidfFeaturizer.fit(list(data.prompts))
    x = featurizer.transform(list(data.prompts))
    if kind == "sw-ranking":
        return SimilarityRouter(encoded, x, featurizer, strong, weak, **params)
    if kind == "mf":
        return FactorizationRouter.train(x, encoded, featurizer, strong, weak, seed=seed, **params)
    return ClassifierRouter.train(x, encoded, featurizer, strong, weak, **params)
