"""Routing among more than two models: per prompt, the cheapest model whose predicted win
rate against the strongest reaches the threshold (the strongest itself when none does).

"Strongest" is the model named, else the most expensive one. Costs come from the caller
(the registry's per-model prices when served).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from arena.routing.errors import RoutingError
from arena.routing.router import Router


def choose_models(
    router: Router,
    prompts: Sequence[str],
    costs: Mapping[str, float],
    threshold: float,
    *,
    strongest: str | None = None,
) -> list[str]:
    if len(costs) < 2:
        raise RoutingError("routing needs at least two models with costs")
    if any(c < 0 or not np.isfinite(c) for c in costs.values()):
        raise RoutingError("model costs must be finite and non-negative")
    strongest = strongest or max(costs, key=lambda m: (costs[m], m))
    if strongest not in costs:
        raise RoutingError(f"the strongest model {strongest!r} has no cost")
    by_cost = sorted((m for m in costs if m != strongest), key=lambda m: (costs[m], m))
    choice = np.full(len(prompts), strongest, dtype=object)
    open_ = np.ones(len(prompts), dtype=bool)
    for model in by_cost:
        if costs[model] > costs[strongest] or not open_.any():
            break
        idx = np.flatnonzero(open_)
        p = router.win_probability([prompts[i] for i in idx], model, strongest)
        ok = idx[p >= threshold]
        choice[ok] = model
        open_[ok] = False
    return choice.tolist()
