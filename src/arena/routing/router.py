"""What every router is: P(model beats other | prompt), a strong/weak pair, and ``random``.

A router answers ``win_probability(prompts, model, other)`` (ties count half); for a pair it
routes a prompt to the strong model when ``strong_win_rate`` reaches the threshold, as
RouteLLM does. ``random`` draws that rate uniformly from a seeded hash of the prompt: the
baseline every figure is compared with, reproducible run to run.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from arena.routing.errors import RoutingError


class Router(ABC):
    """A trained (or trivial) router between ``models``; ``strong``/``weak`` name the pair."""

    kind: str = ""

    def __init__(self, models: Sequence[str], strong: str | None, weak: str | None) -> None:
        self.models = tuple(models)
        self.strong = strong
        self.weak = weak
        self.featurizer: Any = None

    @abstractmethod
    def win_probability(self, prompts: Sequence[str], model: str, other: str) -> np.ndarray:
        """P(``model``'s answer is preferred to ``other``'s) per prompt, ties counting half."""

    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        if not self.strong or not self.weak:
            raise RoutingError(f"the {self.kind} router has no strong/weak pair set")
        return self.win_probability(prompts, self.strong, self.weak)

    def route(self, prompts: Sequence[str], threshold: float) -> list[str]:
        """The strong model where its win rate reaches ``threshold``, else the weak one."""
        rates = self.strong_win_rate(prompts)
        return [self.strong if r >= threshold else self.weak for r in rates]  # type: ignore[misc]

    def check_models(self, *names: str) -> None:
        unknown = [n for n in names if self.models and n not in self.models]
        if unknown:
            raise RoutingError(
                f"the router knows no model {', '.join(map(repr, unknown))}; it was trained on "
                f"{', '.join(self.models)}"
            )

    # persistence: JSON-able parameters and named arrays (see ``persistence``)
    def params(self) -> dict[str, Any]:
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}


def hashed_uniform(prompts: Sequence[str], salt: str) -> np.ndarray:
    """A uniform draw in [0, 1) per prompt, fixed by the prompt and the salt."""
    out = np.empty(len(prompts))
    for i, p in enumerate(prompts):
        digest = hashlib.sha256(f"{salt}\x1f{p}".encode()).digest()
        out[i] = int.from_bytes(digest[:8], "big") / 2.0**64
    return out


class RandomRouter(Router):
    """Strong-model win rate drawn at random (seeded by the prompt): the baseline."""

    kind = "random"

    def __init__(
        self,
        models: Sequence[str] = (),
        strong: str | None = None,
        weak: str | None = None,
        *,
        seed: int = 0,
    ) -> None:
        super().__init__(models, strong, weak)
        self.seed = seed

    def win_probability(self, prompts: Sequence[str], model: str, other: str) -> np.ndarray:
        self.check_models(model, other)
        if model == other:
            return np.full(len(prompts), 0.5)
        first, second = sorted((model, other))
        p = hashed_uniform(prompts, f"{self.seed}\x1f{first}\x1f{second}")
        return p if model == first else 1.0 - p

    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        if self.strong and self.weak:
            return self.win_probability(prompts, self.strong, self.weak)
        return hashed_uniform(prompts, str(self.seed))

    def params(self) -> dict[str, Any]:
        return {"seed": self.seed}
