"""Router models (``provider: router``) in the gateway: the router chooses a registry target
before the stream opens, so the answer streams straight from that target (its own fast path,
failover rules and errors), the response names it, and metrics count it per target."""

from __future__ import annotations

from typing import Any

from arena.gateway.routing import Target

ROUTED_HEADER = "x-arena-routed-model"


async def route_targets(
    gw: Any, targets: list[Target], body: Any
) -> tuple[list[Target], str | None]:
    """``targets`` unchanged for an ordinary model; for a router model, the one target it
    chose for ``body`` and that target's name (only registry-configured targets exist)."""
    if len(targets) != 1 or targets[0].worker_id is not None:
        return targets, None
    route = getattr(targets[0].provider, "route", None)
    if route is None:
        return targets, None
    choice = await route(body)
    metrics = gw.metrics
    metrics.child(metrics.routed, body.model, choice.model).inc()
    return [Target(choice.model, choice.provider)], choice.model
