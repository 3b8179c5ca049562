"""A classifier on prompt features: logistic regression of "the strong model wins".

It learns one pair: battles between the strong and the weak model (either side), labelled 1
when the strong one wins, 0 when the weak one does, ½ for a tie (a soft label, which
cross-entropy takes as is). L2-penalised, fitted by L-BFGS on scipy sparse or dense features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from arena.ratings.bradley_terry import log_sigmoid, sigmoid
from arena.routing.errors import RoutingError
from arena.routing.router import Router
from arena.routing.training_data import EncodedBattles


def fit_logistic(
    x: np.ndarray | sp.csr_matrix,
    y: np.ndarray,
    weights: np.ndarray,
    *,
    l2: float = 1e-2,
    max_iter: int = 500,
) -> tuple[np.ndarray, float]:
    """Coefficients and intercept minimising weighted cross-entropy + ½·l2·|coef|²."""
    d = x.shape[1]
    wts = weights / weights.sum()

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        coef, bias = theta[:d], theta[d]
        m = np.asarray(x @ coef).ravel() + bias
        loss = -(wts * (y * log_sigmoid(m) + (1 - y) * log_sigmoid(-m))).sum()
        loss += 0.5 * l2 * coef @ coef
        g = wts * (sigmoid(m) - y)
        grad = np.concatenate([np.asarray(x.T @ g).ravel() + l2 * coef, [g.sum()]])
        return float(loss), grad

    result = minimize(
        loss_grad, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
    )
    return result.x[:d], float(result.x[d])


class ClassifierRouter(Router):
    kind = "classifier"

    def __init__(
        self,
        models: Sequence[str],
        featurizer: Any,
        strong: str,
        weak: str,
        coef: np.ndarray,
        intercept: float,
        *,
        l2: float,
    ) -> None:
        super().__init__(models, strong, weak)
        self.featurizer = featurizer
        self.coef, self.intercept, self.l2 = coef, intercept, l2

    @classmethod
    def train(
        cls,
        x: np.ndarray | sp.csr_matrix,
        encoded: EncodedBattles,
        featurizer: Any,
        strong: str,
        weak: str,
        *,
        l2: float = 1e-2,
    ) -> ClassifierRouter:
        s, w = encoded.models.index(strong), encoded.models.index(weak)
        a_strong = (encoded.a == s) & (encoded.b == w)
        b_strong = (encoded.a == w) & (encoded.b == s)
        rows = np.flatnonzero(a_strong | b_strong)
        if len(rows) == 0:
            raise RoutingError(f"no battles between {strong!r} and {weak!r} to learn from")
        y = np.where(a_strong[rows], encoded.score[rows], 1.0 - encoded.score[rows])
        coef, intercept = fit_logistic(x[rows], y, encoded.weights[rows], l2=l2)
        return cls((strong, weak), featurizer, strong, weak, coef, intercept, l2=l2)

    def win_probability(self, prompts: Sequence[str], model: str, other: str) -> np.ndarray:
        pair = {model, other}
        if pair != {self.strong, self.weak}:
            raise RoutingError(f"the classifier router only knows {self.strong!r} vs {self.weak!r}")
        x = self.featurizer.transform(list(prompts))
        p = sigmoid(np.asarray(x @ self.coef).ravel() + self.intercept)
        return p if model == self.strong else 1.0 - p

    def params(self) -> dict[str, Any]:
        return {"l2": self.l2, "intercept": self.intercept}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"classifier_coef": self.coef}
