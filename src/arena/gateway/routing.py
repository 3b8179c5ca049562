"""Which backend answers a request: model lookup, candidate order, failover, timeouts.

A model is served either by the provider built from the registry file ("static") or by
registered workers (in dispatch order), never both: a worker can never shadow a configured
model, whatever the worker table says (registration refuses such names too). A candidate
that fails before its first delta — refused connection, 5xx, timeout to first token — is
skipped and the next one is tried; once a delta has gone out, a failure is the client's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from arena.errors import (
    ArenaError,
    ModelNotFound,
    NoHealthyWorker,
    UpstreamError,
    UpstreamTimeout,
)
from arena.gateway.worker_pool import WorkerPool
from arena.protocol import ChatCompletionRequest
from arena.providers.base import Delta, Provider, ProviderInfo
from arena.providers.upstream_errors import sanitize_upstream_text

log = logging.getLogger("arena.gateway.routing")
T = TypeVar("T")

STATIC = "static"
# Failures worth trying another backend for; anything else (bad request...) is the caller's.
RETRYABLE = (UpstreamError, UpstreamTimeout)


@dataclass(slots=True)
class Target:
    """One backend to try for one request."""

    model: str
    provider: Provider
    worker_id: str | None = None
    pool: WorkerPool | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return self.worker_id or STATIC

    def acquire(self) -> None:
        if self.pool is not None and self.worker_id is not None:
            self.pool.acquire(self.worker_id)

    def release(self) -> None:
        if self.pool is not None and self.worker_id is not None:
            self.pool.release(self.worker_id)

    def mark_failed(self) -> None:
        if self.pool is not None and self.worker_id is not None:
            self.pool.mark_failed(self.worker_id)


class ModelRouter:
    def __init__(
        self,
        static: Mapping[str, Provider] | None = None,
        *,
        cards: Mapping[str, dict[str, Any]] | None = None,
        worker_models: set[str] | None = None,
        pool: WorkerPool | None = None,
    ) -> None:
        """``cards``: extra /v1/models fields per model; ``worker_models``: models the
        registry declares as served by workers only (503, not 404, when none is live)."""
        self.static = dict(static or {})
        self.cards = dict(cards or {})
        self.worker_models = set(worker_models or ())
        self.pool = pool

    def _live_workers(self) -> dict[str, list[Any]]:
        """Live workers per model, leaving out any that name a statically served model."""
        if self.pool is None:
            return {}
        return {m: infos for m, infos in self.pool.models().items() if m not in self.static}

    def model_names(self) -> list[str]:
        names = set(self.static) | self.worker_models | set(self._live_workers())
        return sorted(names)

    def model_cards(self, created: int) -> list[dict[str, Any]]:
        cards = []
        live = self._live_workers()
        for name in self.model_names():
            card = {"id": name, "object": "model", "created": created, "owned_by": "arena"}
            card.update(self.cards.get(name, {}))
            if name in live:
                card["workers"] = len(live[name])
            cards.append(card)
        return cards

    def knows(self, model: str) -> bool:
        return (
            model in self.static
            or model in self.worker_models
            or (self.pool is not None and self.pool.serves(model))
        )

    def targets(self, model: str) -> list[Target]:
        """Backends for ``model`` in the order to try them."""
        targets: list[Target] = []
        if self.pool is not None and model not in self.static:
            for worker_id in self.pool.ordered(model):
                provider = self.pool.provider(worker_id, model)
                targets.append(Target(model, provider, worker_id, self.pool))
        static = self.static.get(model)
        if static is not None:
            targets.append(Target(model, static))
        if targets:
            return targets
        if self.knows(model):
            raise NoHealthyWorker(f"no live worker serves model {model!r} right now; try later")
        raise ModelNotFound(f"the model {model!r} does not exist", param="model")

    async def aclose(self) -> None:
        for provider in self.static.values():
            try:
                await provider.aclose()
            except Exception:
                log.warning("closing a provider failed", exc_info=True)
        if self.pool is not None:
            await self.pool.aclose()


def _as_arena_error(error: BaseException) -> ArenaError:
    if isinstance(error, ArenaError):
        return error
    if isinstance(error, TimeoutError):
        return UpstreamTimeout("the backend did not answer in time")
    if isinstance(error, MemoryError):
        # Said plainly, without the allocator's words (sizes, internals); not retried, and no
        # backend marked failed: the request itself may be what asked for too much.
        return ArenaError("the model ran out of memory answering this request")
    # Providers promise typed errors; anything else is still the backend's failure. Its
    # text may quote the backend, so clients get the short, sanitized form.
    reason = sanitize_upstream_text(str(error), limit=120)
    return UpstreamError(f"the backend failed: {type(error).__name__}: {reason}")


@dataclass(frozen=True, slots=True)
class Timeouts:
    first_token_s: float
    idle_s: float
    total_s: float


class DeltaStream:
    """A started stream: its first delta is already in hand; ``next()`` applies timeouts."""

    def __init__(
        self,
        target: Target,
        first: Delta | None,
        iterator: AsyncIterator[Delta],
        timeouts: Timeouts,
        deadline: float,
        on_failure: Callable[[Target, ArenaError], None],
        *,
        guard: bool = True,
    ) -> None:
        """``guard``: apply the idle/total limits here; False when the provider enforces
        them itself (the HTTP adapters do, per read), which saves a timer per chunk."""
        self.target = target
        self._guard = guard
        self.first = first
        self._iterator = iterator
        self._timeouts = timeouts
        self._deadline = deadline
        self._on_failure = on_failure
        self._closed = False

    async def next(self) -> Any:
        try:
            if self._guard:
                loop = asyncio.get_running_loop()
                async with asyncio.timeout_at(
                    min(loop.time() + self._timeouts.idle_s, self._deadline)
                ):
                    return await anext(self._iterator)
            return await anext(self._iterator)
        except StopAsyncIteration:
            return None
        except Exception as e:
            error = _as_arena_error(e)
            if isinstance(error, RETRYABLE):
                self.target.mark_failed()
            self._on_failure(self.target, error)
            raise error from None

    async def __aiter__(self) -> AsyncIterator[Any]:
        if self.first is not None:
            yield self.first
        while (delta := await self.next()) is not None:
            yield delta

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.target.release()
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:
                log.debug("closing a backend stream failed", exc_info=True)


async def open_stream(
    targets: list[Target],
    start: Callable[[Provider], AsyncIterator[Any]],
    timeouts: Timeouts,
    *,
    on_failure: Callable[[Target, ArenaError], None],
    self_timed: Callable[[Provider], bool] = lambda provider: False,
) -> DeltaStream:
    """Start the stream on the first target that produces a first item (or ends cleanly).

    Items are whatever ``start`` yields (``Delta`` objects, or raw chunk strings from a
    passthrough adapter). ``self_timed(provider)`` says the provider enforces the idle and
    total limits itself."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeouts.total_s
    last_error: ArenaError | None = None
    for target in targets:
        target.acquire()
        iterator: AsyncIterator[Delta] | None = None
        try:
            iterator = aiter(start(target.provider))
            when = min(loop.time() + timeouts.first_token_s, deadline)
            async with asyncio.timeout_at(when):
                first = await anext(iterator)
        except StopAsyncIteration:
            return DeltaStream(
                target, None, iterator, timeouts, deadline, on_failure,  # type: ignore[arg-type]
                guard=not self_timed(target.provider),
            )  # fmt: skip
        except BaseException as e:
            target.release()
            if iterator is not None:
                await _quietly_close(iterator)
            if not isinstance(e, Exception):
                raise
            error = _as_arena_error(e)
            if not isinstance(error, RETRYABLE):
                raise error from None
            target.mark_failed()
            on_failure(target, error)
            last_error = error
            if target.worker_id is not None:
                log.warning("worker %s failed before its first token: %s", target.label, error)
            continue
        return DeltaStream(
            target, first, iterator, timeouts, deadline, on_failure,
            guard=not self_timed(target.provider),
        )  # fmt: skip
    assert last_error is not None
    raise last_error


async def call_with_failover(
    targets: list[Target],
    call: Callable[[Provider], Awaitable[T]],
    timeouts: Timeouts,
    *,
    on_failure: Callable[[Target, ArenaError], None],
) -> tuple[Target, T]:
    """A one-shot call (embeddings) with the same fall-through on retryable failures."""
    last_error: ArenaError | None = None
    for target in targets:
        target.acquire()
        try:
            async with asyncio.timeout(timeouts.total_s):
                return target, await call(target.provider)
        except Exception as e:
            error = _as_arena_error(e)
            if not isinstance(error, RETRYABLE):
                raise error from None
            target.mark_failed()
            on_failure(target, error)
            last_error = error
        finally:
            target.release()
    assert last_error is not None
    raise last_error


async def _quietly_close(iterator: AsyncIterator[Delta]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        log.debug("closing a failed backend stream raised", exc_info=True)


class RoutedProvider(Provider):
    """A model as the gateway serves it — its live workers in dispatch order, then any
    static provider, with failover before the first token — behind the provider
    interface. The arena uses it for models that registered workers serve."""

    def __init__(
        self,
        router: ModelRouter,
        model: str,
        timeouts: Timeouts,
        *,
        capabilities: frozenset[str] = frozenset({"text"}),
    ) -> None:
        self._router = router
        self._model = model
        self._timeouts = timeouts
        self.info = ProviderInfo(kind="workers", upstream_model=model, capabilities=capabilities)

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        return self._stream(request)

    async def _stream(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        targets = self._router.targets(self._model)  # NoHealthyWorker when none is live
        stream = await open_stream(
            targets,
            lambda provider: provider.stream_chat(request),
            self._timeouts,
            on_failure=lambda target, error: None,
            self_timed=lambda provider: hasattr(provider, "stream_chat_raw"),
        )
        try:
            async for delta in stream:
                yield delta
        finally:
            await stream.aclose()

    async def health(self) -> bool:
        """Healthy while a live worker (or a static provider) serves the model."""
        try:
            return bool(self._router.targets(self._model))
        except ArenaError:
            return False
