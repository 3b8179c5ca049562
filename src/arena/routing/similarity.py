"""Similarity-weighted ranking: a Bradley–Terry fit per request, battles weighted by how
close their prompt is to the request.

Weights are ``exp(sharpness · (sim − max sim))`` over cosine similarities, so the nearest
battles dominate while every battle keeps some say (the fit stays defined). The fit itself is
``arena.ratings.fit_bradley_terry`` with sample weights: one rating engine, no fork.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from arena.ratings.bradley_terry import fit_bradley_terry, sigmoid
from arena.routing.router import Router
from arena.routing.training_data import EncodedBattles

_CHUNK = 256


class SimilarityRouter(Router):
    kind = "sw-ranking"

    def __init__(
        self,
        encoded: EncodedBattles,
        features: np.ndarray | sp.csr_matrix,
        featurizer: Any,
        strong: str,
        weak: str,
        *,
        sharpness: float = 10.0,
    ) -> None:
        super().__init__(encoded.models, strong, weak)
        self.encoded = encoded
        self.features = features
        self.featurizer = featurizer
        self.sharpness = sharpness

    def similarities(self, prompts: Sequence[str]) -> np.ndarray:
        query = self.featurizer.transform(list(prompts))
        sims = query @ self.features.T
        return sims.toarray() if sp.issparse(sims) else np.asarray(sims)

    def theta(self, prompts: Sequence[str]) -> np.ndarray:
        """Per prompt, the natural-log strengths of every model from the weighted fit."""
        out = np.zeros((len(prompts), len(self.models)))
        base = self.encoded.battles
        for start in range(0, len(prompts), _CHUNK):
            sims = self.similarities(prompts[start : start + _CHUNK])
            for row, s in enumerate(sims):
                w = np.exp(self.sharpness * (s - s.max())) * self.encoded.weights
                fit = fit_bradley_terry(dataclasses.replace(base, weights=w))
                out[start + row] = fit.theta
        return out

    def win_probability(self, prompts: Sequence[str], model: str, other: str) -> np.ndarray:
        self.check_models(model, other)
        theta = self.theta(prompts)
        i, j = self.models.index(model), self.models.index(other)
        return sigmoid(theta[:, i] - theta[:, j])

    def params(self) -> dict[str, Any]:
        return {"sharpness": self.sharpness}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "battle_a": self.encoded.a,
            "battle_b": self.encoded.b,
            "battle_outcome": self.encoded.battles.outcome,
            "battle_weight": self.encoded.weights,
        }
        if sp.issparse(self.features):
            f = sp.csr_matrix(self.features)
            out |= {
                "features_data": f.data,
                "features_indices": f.indices,
                "features_indptr": f.indptr,
                "features_shape": np.array(f.shape),
            }
        else:
            out["features_dense"] = np.asarray(self.features)
        return out

    @staticmethod
    def features_from(arrays: dict[str, np.ndarray]) -> np.ndarray | sp.csr_matrix:
        if "features_dense" in arrays:
            return arrays["features_dense"]
        return sp.csr_matrix(
            (arrays["features_data"], arrays["features_indices"], arrays["features_indptr"]),
            shape=tuple(arrays["features_shape"].tolist()),
        )
