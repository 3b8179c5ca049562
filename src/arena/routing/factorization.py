"""Matrix factorisation: a small bilinear model of (prompt features, model).

Each model m has a vector v_m and a bias c_m; a prompt x is projected to z = Wᵀx + b. The
score of m on x is v_m·z + c_m and P(a beats b | x) = σ(score_a − score_b), fitted to the
battles' outcomes (ties as half a win each) by L-BFGS with an L2 penalty. Plain numpy/scipy,
so it trains and serves without torch; a decision is one sparse product and a few dot
products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from arena.ratings.bradley_terry import log_sigmoid, sigmoid
from arena.routing.router import Router
from arena.routing.training_data import EncodedBattles


def _unpack(theta: np.ndarray, d: int, r: int, k: int):
    at = 0
    w = theta[at : at + d * r].reshape(d, r)
    at += d * r
    b = theta[at : at + r]
    at += r
    v = theta[at : at + k * r].reshape(k, r)
    at += k * r
    return w, b, v, theta[at : at + k]


def fit_factorization(
    x: np.ndarray | sp.csr_matrix,
    encoded: EncodedBattles,
    *,
    rank: int = 16,
    l2: float = 1e-2,
    max_iter: int = 300,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(W, b, V, c) maximising the weighted pairwise likelihood of the battles."""
    d = x.shape[1]
    k = len(encoded.models)
    a, bb, y = encoded.a, encoded.b, encoded.score
    wts = encoded.weights / encoded.weights.sum()
    rng = np.random.default_rng(seed)
    init = np.concatenate(
        [
            rng.normal(0, 0.1, d * rank),
            np.zeros(rank),
            rng.normal(0, 0.1, k * rank),
            np.zeros(k),
        ]
    )

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b, v, c = _unpack(theta, d, rank, k)
        z = np.asarray(x @ w) + b
        dv = v[a] - v[bb]
        margin = np.einsum("ij,ij->i", dv, z) + c[a] - c[bb]
        loss = -(wts * (y * log_sigmoid(margin) + (1 - y) * log_sigmoid(-margin))).sum()
        loss += 0.5 * l2 * (np.sum(w * w) + np.sum(v * v))
        g = wts * (sigmoid(margin) - y)
        dz = g[:, None] * dv
        gw = np.asarray(x.T @ dz) + l2 * w
        gb = dz.sum(axis=0)
        gzv = g[:, None] * z
        gv = np.zeros_like(v)
        np.add.at(gv, a, gzv)
        np.subtract.at(gv, bb, gzv)
        gv += l2 * v
        gc = np.bincount(a, g, minlength=k) - np.bincount(bb, g, minlength=k)
        return float(loss), np.concatenate([gw.ravel(), gb, gv.ravel(), gc])

    result = minimize(loss_grad, init, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return _unpack(result.x, d, rank, k)


class FactorizationRouter(Router):
    kind = "mf"

    def __init__(
        self,
        models: Sequence[str],
        featurizer: Any,
        strong: str,
        weak: str,
        w: np.ndarray,
        b: np.ndarray,
        v: np.ndarray,
        c: np.ndarray,
        *,
        rank: int,
        l2: float,
    ) -> None:
        super().__init__(models, strong, weak)
        self.featurizer = featurizer
        self.w, self.b, self.v, self.c = w, b, v, c
        self.rank, self.l2 = rank, l2

    @classmethod
    def train(
        cls,
        x: np.ndarray | sp.csr_matrix,
        encoded: EncodedBattles,
        featurizer: Any,
        strong: str,
        weak: str,
        *,
        rank: int = 16,
        l2: float = 1e-2,
        seed: int = 0,
    ) -> FactorizationRouter:
        w, b, v, c = fit_factorization(x, encoded, rank=rank, l2=l2, seed=seed)
        return cls(encoded.models, featurizer, strong, weak, w, b, v, c, rank=rank, l2=l2)

    def scores_from_features(self, x: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """(n prompts, k models) scores; differences are log-odds of winning."""
        z = np.asarray(x @ self.w) + self.b
        return z @ self.v.T + self.c

    def win_probability(self, prompts: Sequence[str], model: str, other: str) -> np.ndarray:
        self.check_models(model, other)
        s = self.scores_from_features(self.featurizer.transform(list(prompts)))
        return sigmoid(s[:, self.models.index(model)] - s[:, self.models.index(other)])

    def params(self) -> dict[str, Any]:
        return {"rank": self.rank, "l2": self.l2}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mf_w": self.w, "mf_b": self.b, "mf_v": self.v, "mf_c": self.c}
