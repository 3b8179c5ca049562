"""The ``/v1`` FastAPI app: models, chat and text completions, embeddings, health, metrics.

``create_gateway_app`` is used twice: by ``arena serve`` (registry providers plus workers,
API keys, limits, worker registration) and by ``arena worker`` (one local provider, no
keys). The routes are the same code in both.

Besides the OpenAI routes: ``/health``, ``/metrics``, the schema and its docs page
(``operator_routes.py``, guarded by the keys), and the schema's view of the OpenAI routes
(``api_schema.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import math
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from arena.config import Settings
from arena.errors import ArenaError
from arena.gateway.api_schema import document_routes
from arena.gateway.auth import Caller, KeyAuthenticator, OpenAccess, SharedSecretAccess
from arena.gateway.client_connection import (
    ClientDisconnected,
    EventStreamResponse,
    cancel_on_disconnect,
)
from arena.gateway.http_errors import install_error_handlers
from arena.gateway.metrics import GatewayMetrics
from arena.gateway.operator_routes import add_operator_routes
from arena.gateway.rate_limit import KeyRateLimiter
from arena.gateway.request_body import read_model
from arena.gateway.routing import (
    DeltaStream,
    ModelRouter,
    Target,
    Timeouts,
    call_with_failover,
    open_stream,
)
from arena.gateway.streaming import (
    DONE,
    ChunkEncoder,
    DeltaFold,
    RawChunkRelay,
    parse_chunk,
    sse_error,
    usage_dict,
)
from arena.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    StreamOptions,
    new_id,
    now_s,
)
from arena.providers.base import TokenUsage

log = logging.getLogger("arena.gateway")

Access = KeyAuthenticator | OpenAccess | SharedSecretAccess
CLIENT_CLOSED = 499  # nginx's convention, for metrics only: the client left first.


def json_response(payload: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json")


def estimate_usage(prompt_chars: int, fold: DeltaFold) -> TokenUsage:
    """Used only when a backend reports no usage: ~4 characters per prompt token, one
    token per streamed text delta (what token-by-token backends send)."""
    return TokenUsage(prompt_tokens=math.ceil(prompt_chars / 4), completion_tokens=fold.text_deltas)


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


def _prompt_chars(body: ChatCompletionRequest | CompletionRequest) -> int:
    if isinstance(body, ChatCompletionRequest):
        return sum(len(m.text()) for m in body.messages)
    prompt = body.prompt
    return len(prompt) if isinstance(prompt, str) else sum(len(str(p)) for p in prompt)


async def _generate(request: Request, *, chat: bool) -> Response:
    gw: Gateway = request.app.state.gateway
    endpoint = "chat" if chat else "completions"
    started = gw.begin(endpoint)
    model_label = "unknown"
    status = 500
    handed_off = False
    try:
        caller, body = await gw.admit(request, ChatCompletionRequest if chat else CompletionRequest)
        targets = gw.router.targets(body.model)
        model_label = body.model
        start = _starter(body, chat=chat)
        response_id = new_id("chatcmpl" if chat else "cmpl")
        created = now_s()

        if body.stream:
            stream = await cancel_on_disconnect(
                request.receive,
                open_stream(
                    targets,
                    start,
                    gw.timeouts,
                    on_failure=gw.upstream_failed,
                    self_timed=_has_raw_stream,
                ),
            )
            gw.metrics.child(gw.metrics.first_token, endpoint).observe(  # type: ignore[attr-defined]
                time.perf_counter() - started
            )
            run = _StreamRun(
                gw,
                stream,
                ChunkEncoder(response_id=response_id, created=created, model=body.model, chat=chat),
                caller=caller,
                endpoint=endpoint,
                model=body.model,
                include_usage=body.wants_usage_chunk(),
                prompt_chars=_prompt_chars(body),
                started=started,
            )
            handed_off = True
            return EventStreamResponse(
                run.events(), on_close=run.close, headers={"x-arena-backend": stream.target.label}
            )

        async def collect() -> tuple[DeltaFold, str]:
            stream = await open_stream(
                targets,
                start,
                gw.timeouts,
                on_failure=gw.upstream_failed,
                self_timed=_has_raw_stream,
            )
            fold = DeltaFold()
            try:
                async for item in stream:
                    if item.__class__ is list:  # a batch of raw chunks
                        for data in item:
                            fold.add_chunk(parse_chunk(data), chat=chat)
                    else:
                        fold.add(item)
            finally:
                await stream.aclose()
            return fold, stream.target.label

        fold, backend = await cancel_on_disconnect(request.receive, collect())
        if fold.usage is None:
            fold.usage = estimate_usage(_prompt_chars(body), fold)
        await gw.account(caller, body.model, fold.usage)
        if chat:
            payload = fold.chat_body(response_id=response_id, created=created, model=body.model)
        else:
            payload = fold.completion_body(
                response_id=response_id, created=created, model=body.model
            )
        status = 200
        response = json_response(payload)
        response.headers["x-arena-backend"] = backend
        return response
    except ClientDisconnected:
        status = CLIENT_CLOSED
        return Response(status_code=CLIENT_CLOSED)
    except ArenaError as e:
        status = e.status_code
        raise
    finally:
        if not handed_off:
            gw.finish(endpoint, model_label, status, started)


def _has_raw_stream(provider: Any) -> bool:
    return hasattr(provider, "stream_chat_raw")


def _starter(
    body: ChatCompletionRequest | CompletionRequest, *, chat: bool
) -> Callable[[Any], AsyncIterator[Any]]:
    """How to start the backend stream for ``body`` on a given provider.

    Adapters that offer a raw passthrough (OpenAI-compatible upstreams and workers) yield
    lists of the upstream's chunk JSON, untouched; usage is always requested from them so token
    limits and metrics see it. Other providers yield ``Delta`` objects.
    """
    raw_body = body.model_copy(update={"stream_options": StreamOptions(include_usage=True)})
    if chat:

        def start_chat(provider: Any) -> AsyncIterator[Any]:
            raw = getattr(provider, "stream_chat_raw", None)
            return raw(raw_body) if raw is not None else provider.stream_chat(body)

        return start_chat

    def start_completion(provider: Any) -> AsyncIterator[Any]:
        raw = getattr(provider, "stream_completion_raw", None)
        return raw(raw_body) if raw is not None else provider.stream_completion(body)

    return start_completion


class _StreamRun:
    """One streamed answer: produces its SSE events, then settles accounts exactly once."""

    def __init__(
        self,
        gw: Gateway,
        stream: DeltaStream,
        encoder: ChunkEncoder,
        *,
        caller: Caller,
        endpoint: str,
        model: str,
        include_usage: bool,
        prompt_chars: int,
        started: float,
    ) -> None:
        self.gw = gw
        self.stream = stream
        self.encoder = encoder
        self.caller = caller
        self.endpoint = endpoint
        self.model = model
        self.include_usage = include_usage
        self.prompt_chars = prompt_chars
        self.started = started
        self.status = CLIENT_CLOSED
        self.fold = DeltaFold()
        self.relay = RawChunkRelay(
            upstream_model=stream.target.provider.info.upstream_model,
            public_model=model,
            include_usage=include_usage,
        )

    async def events(self) -> AsyncIterator[bytes]:
        encoder = self.encoder
        fold = self.fold
        relay = self.relay
        try:
            async for delta in self.stream:
                if delta.__class__ is list:  # a batch of raw chunks: one write for all
                    data, error = relay.relay_batch(delta)
                    if data:
                        yield data
                    if error is not None:
                        raise error
                    continue
                if delta.usage is not None:
                    fold.usage = delta.usage
                if delta.text:
                    fold.text_deltas += 1
                data = encoder.delta(delta)
                if data:
                    yield data
        except ArenaError as e:
            self.status = e.status_code
            log.warning("stream from %s failed after it began: %s", self.stream.target.label, e)
            yield sse_error(e)
            return
        if self.include_usage and relay.usage is None:
            yield encoder.usage(self._usage())
        self.status = 200
        yield DONE

    def _usage(self) -> TokenUsage:
        if self.relay.usage is not None:
            return self.relay.usage
        if self.fold.usage is None:
            self.fold.text_deltas += self.relay.chunks
            self.fold.usage = estimate_usage(self.prompt_chars, self.fold)
        return self.fold.usage

    async def close(self, client_left: bool) -> None:
        try:
            await self.stream.aclose()
        finally:
            gw = self.gw
            gw.finish(self.endpoint, self.model, self.status, self.started)
            await gw.account(self.caller, self.model, self._usage())


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


async def _embeddings(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started = gw.begin("embeddings")
    model_label = "unknown"
    status = 500
    try:
        caller, body = await gw.admit(request, EmbeddingRequest)
        targets = gw.router.targets(body.model)
        model_label = body.model
        _, result = await cancel_on_disconnect(
            request.receive,
            call_with_failover(
                targets,
                lambda provider: provider.embed(body),
                gw.timeouts,
                on_failure=gw.upstream_failed,
            ),
        )
        usage = TokenUsage(prompt_tokens=result.prompt_tokens)
        await gw.account(caller, body.model, usage)
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": _encode_vector(v, body.encoding_format),
            }
            for i, v in enumerate(result.vectors)
        ]
        status = 200
        u = usage_dict(usage) or {}
        return json_response(
            {
                "object": "list",
                "data": data,
                "model": body.model,
                "usage": {"prompt_tokens": u["prompt_tokens"], "total_tokens": u["total_tokens"]},
            }
        )
    except ClientDisconnected:
        status = CLIENT_CLOSED
        return Response(status_code=CLIENT_CLOSED)
    except ArenaError as e:
        status = e.status_code
        raise
    finally:
        gw.finish("embeddings", model_label, status, started)


async def _chat(request: Request) -> Response:
    return await _generate(request, chat=True)


async def _completions(request: Request) -> Response:
    return await _generate(request, chat=False)


async def _models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    await gw.access.authenticate(request)
    return json_response({"object": "list", "data": gw.router.model_cards(gw.created)})


async def _model(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    await gw.access.authenticate(request)
    name = request.path_params["model"]
    for card in gw.router.model_cards(gw.created):
        if card["id"] == name:
            return json_response(card)
    from arena.errors import ModelNotFound

    raise ModelNotFound(f"the model {name!r} does not exist", param="model")


# Routes answered past FastAPI's middleware stack (see GatewayApp).
LANE_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models")


class GatewayApp(FastAPI):
    """FastAPI with a lane for the hot OpenAI routes that skips its middleware stack.

    Those routes parse bodies, check sizes and map errors themselves, so the stack's layers
    (error, telemetry, body-limit, exception and exit-stack middleware, then route matching)
    only add cost: about 50 µs of the ~700 µs of CPU a relayed request takes. The lane keeps
    what matters from them: the app's exception handlers, and an OpenAI-shaped 500 for an
    unexpected error before the response has started.
    """

    @functools.cached_property
    def _lane_routes(self) -> dict[str, Any]:
        """Path -> route, built at the first request (every route is added by then). The
        lane routes are plain Starlette routes; their FastAPI twins exist for the schema only."""
        return {
            r.path: r
            for r in self.router.routes
            if getattr(r, "path", None) in LANE_PATHS and not isinstance(r, APIRoute)
        }

    @functools.cached_property
    def _lane_handlers(self) -> tuple[dict[Any, Any], dict[int, Any]]:
        """The app's handlers as Starlette's ExceptionMiddleware splits them (by exception
        type, by status); ``Exception`` itself is ours to apply, see ``_take_lane``."""
        handlers = {k: v for k, v in self.exception_handlers.items() if k is not Exception}
        return (
            {k: v for k, v in handlers.items() if not isinstance(k, int)},
            {k: v for k, v in handlers.items() if isinstance(k, int)},
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            route = self._lane_routes.get(scope["path"])
            if route is not None and scope["method"] in route.methods:
                await self._take_lane(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _take_lane(self, route: Any, scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = self
        scope["starlette.exception_handlers"] = self._lane_handlers
        started = False

        async def sender(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await route.app(scope, receive, sender)
        except Exception as exc:
            handler = self.exception_handlers.get(Exception)
            if handler is None or started:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)


def create_gateway_app(
    settings: Settings,
    *,
    router: ModelRouter,
    access: Access | None = None,
    limiter: KeyRateLimiter | None = None,
    title: str = "Arena gateway",
) -> FastAPI:
    """The ``/v1`` app. ``access`` defaults to open (no keys); ``limiter`` to none."""
    metrics = GatewayMetrics()
    gateway = Gateway(
        settings=settings,
        router=router,
        access=access or OpenAccess(),
        limiter=limiter,
        metrics=metrics,
    )
    if router.pool is not None:
        metrics.watch_workers(router.pool.counts)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in gateway.on_startup:
            await hook()
        if router.pool is not None:
            await _refresh_quietly(router)
            gateway.background.append(asyncio.create_task(router.pool.run()))
        gateway.serving = True
        try:
            yield
        finally:
            gateway.serving = False
            for task in gateway.background:
                task.cancel()
            for task in gateway.background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            gateway.background.clear()
            await router.aclose()
            for hook in gateway.on_shutdown:
                try:
                    await hook()
                except Exception:
                    log.exception("a shutdown hook failed")

    # FastAPI's own schema and docs routes are off: ours check access (operator_routes.py).
    app = GatewayApp(
        title=title, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.gateway = gateway
    install_error_handlers(app)
    # Plain Starlette routes: the handlers parse and validate bodies themselves (to give
    # OpenAI-shaped errors and enforce the size limit), so FastAPI's per-request
    # dependency solving would be pure overhead on the hot path.
    routes = [
        ("/v1/models", _models, "GET"),
        ("/v1/models/{model:path}", _model, "GET"),
        ("/v1/chat/completions", _chat, "POST"),
        ("/v1/completions", _completions, "POST"),
        ("/v1/embeddings", _embeddings, "POST"),
    ]
    for path, endpoint, method in routes:
        app.router.add_route(path, endpoint, methods=[method], include_in_schema=False)
    add_operator_routes(app)
    document_routes(app)
    return app


async def _refresh_quietly(router: ModelRouter) -> None:
    assert router.pool is not None
    try:
        await router.pool.refresh()
    except Exception:
        log.exception("reading the worker registry at start failed; will retry")
