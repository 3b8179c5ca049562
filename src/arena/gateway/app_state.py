"""What the routes of one gateway app share (``app.state.gateway``): settings, router, access,
limits, metrics, start-up and shutdown hooks, and the per-request bookkeeping."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from arena.config import Settings
from arena.errors import ArenaError
from arena.gateway.auth import Caller, KeyAuthenticator, OpenAccess, SharedSecretAccess
from arena.gateway.metrics import GatewayMetrics
from arena.gateway.rate_limit import KeyRateLimiter
from arena.gateway.request_body import read_model
from arena.gateway.routing import ModelRouter, Target, Timeouts
from arena.protocol import now_s
from arena.providers.base import TokenUsage

log = logging.getLogger("arena.gateway")

Access = KeyAuthenticator | OpenAccess | SharedSecretAccess
CLIENT_CLOSED = 499  # nginx's convention, for metrics only: the client left first.


def json_response(payload: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json")


@dataclass
class Gateway:
    """Everything the routes need; one per app (``app.state.gateway``)."""

    settings: Settings
    router: ModelRouter
    access: Access
    limiter: KeyRateLimiter | None
    metrics: GatewayMetrics
    created: int = field(default_factory=now_s)
    in_flight: int = 0
    serving: bool = False  # between the end of start-up and the start of shutdown
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        self.timeouts = Timeouts(
            first_token_s=s.first_token_timeout_s,
            idle_s=s.stream_idle_timeout_s,
            total_s=s.request_timeout_s,
        )

    # ------------------------------------------------------------ bookkeeping

    def begin(self, endpoint: str) -> float:
        self.in_flight += 1
        self.metrics.child(self.metrics.in_flight, endpoint).inc()  # type: ignore[attr-defined]
        return time.perf_counter()

    def finish(self, endpoint: str, model: str, status: int, started: float) -> None:
        self.in_flight -= 1
        m = self.metrics
        m.child(m.in_flight, endpoint).dec()  # type: ignore[attr-defined]
        m.child(m.requests, endpoint, model, str(status)).inc()  # type: ignore[attr-defined]
        m.child(m.latency, endpoint).observe(time.perf_counter() - started)  # type: ignore[attr-defined]

    def upstream_failed(self, target: Target, error: ArenaError) -> None:
        m = self.metrics
        m.child(m.upstream_errors, target.model, error.code or error.error_type).inc()  # type: ignore[attr-defined]

    async def account(self, caller: Caller, model: str, usage: TokenUsage) -> None:
        m = self.metrics
        if usage.prompt_tokens:
            m.child(m.tokens, model, "prompt").inc(usage.prompt_tokens)  # type: ignore[attr-defined]
        if usage.completion_tokens:
            m.child(m.tokens, model, "completion").inc(usage.completion_tokens)  # type: ignore[attr-defined]
        if self.limiter is not None:
            try:
                await self.limiter.record_tokens(caller, usage.total_tokens)
            except Exception:
                log.warning("recording token usage for rate limits failed", exc_info=True)

    async def admit(self, request: Request, model_type: type[Any]) -> tuple[Caller, Any]:
        caller = await self.access.authenticate(request)
        body = await read_model(request, model_type, self.settings.max_request_bytes)
        if self.limiter is not None:
            await self.limiter.check_request(caller)
        return caller, body
