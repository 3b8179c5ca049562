"""Both sides of a turn streamed at once, merged into one ordered flow of side events.

Each side runs in its own task that pulls deltas from its provider under a first-token and
an idle timeout; the tasks feed one queue, so the browser sees whichever side speaks first.
A failing side never stops the other. Error text shown to users is written here from the
error's kind and the side's label only — an upstream message may name the model, so it is
logged, never sent. In an anonymous battle even the kind is held back: every failure reads
the same (``anonymous_error``), since how a model fails (a timeout, a refusal, a small
context window, a provider that is gone) says something about which model it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.responses import StreamingResponse

from arena.errors import (
    ArenaError,
    BadRequest,
    ContextLengthExceeded,
    NoHealthyWorker,
    UpstreamTimeout,
)
from arena.protocol import ChatCompletionRequest
from arena.providers.base import Delta, Provider, TokenUsage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamLimits:
    first_token_timeout_s: float = 120.0
    idle_timeout_s: float = 60.0
    total_timeout_s: float = 600.0


@dataclass(slots=True)
class SideOutcome:
    """What one side produced in one turn (filled in as the stream goes)."""

    side: str
    parts: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    error: str | None = None  # the public, name-free message
    raw_error: str | None = None  # for the database and logs only (may name the model)
    error_kind: str | None = None  # what really went wrong (server side only)
    public_kind: str | None = None  # the kind the client is told
    started_at: float = 0.0
    first_token_at: float | None = None
    finished_at: float | None = None

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class SideEvent:
    kind: str  # "delta" | "done" | "error"
    side: str
    text: str = ""
    outcome: SideOutcome | None = None


def public_error(exc: BaseException, label: str) -> tuple[str, str]:
    """A (kind, message) pair safe to show: it depends on the error type and the label only."""
    if isinstance(exc, UpstreamTimeout | TimeoutError):
        return "timeout", f"{label} did not answer in time. Try regenerating."
    if isinstance(exc, ContextLengthExceeded):
        return "context_length", f"The conversation is too long for {label}. Start a new round."
    if isinstance(exc, NoHealthyWorker):
        return "unavailable", f"{label} is unavailable right now. Try again shortly."
    if isinstance(exc, BadRequest):
        return "rejected", f"{label} refused this request. Try rephrasing or start a new round."
    if isinstance(exc, ArenaError):
        return "upstream", f"{label} failed while answering. Try regenerating."
    return "internal", f"{label} failed while answering. Try regenerating."


ANONYMOUS_FAILURE_KIND = "failed"


def anonymous_error(label: str) -> tuple[str, str]:
    """The one (kind, message) pair every failed side of an anonymous battle gets."""
    return (
        ANONYMOUS_FAILURE_KIND,
        f"{label} could not answer. Regenerate the answers or start a new round.",
    )


async def _run_side(
    side: str,
    label: str,
    provider: Provider | None,
    request: ChatCompletionRequest,
    limits: StreamLimits,
    queue: asyncio.Queue[SideEvent],
    outcome: SideOutcome,
    uniform_errors: bool,
) -> None:
    outcome.started_at = time.time()
    iterator: AsyncIterator[Delta] | None = None
    deadline = time.monotonic() + limits.total_timeout_s
    try:
        if provider is None:  # the registry lost this model since the battle began
            raise NoHealthyWorker(f"no provider serves {request.model!r} any more")
        # Inside the try: some providers refuse a request before returning a stream.
        iterator = provider.stream_chat(request).__aiter__()
        while True:
            wait = limits.idle_timeout_s if outcome.parts else limits.first_token_timeout_s
            wait = min(wait, max(0.0, deadline - time.monotonic()))
            try:
                async with asyncio.timeout(wait):
                    delta = await iterator.__anext__()
            except StopAsyncIteration:
                break
            if delta.index != 0:
                continue
            if delta.usage is not None:
                outcome.usage = delta.usage
            if delta.finish_reason:
                outcome.finish_reason = delta.finish_reason
            if delta.text:
                if outcome.first_token_at is None:
                    outcome.first_token_at = time.time()
                outcome.parts.append(delta.text)
                await queue.put(SideEvent("delta", side, delta.text))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every failure becomes a side error, never a crash
        kind, message = public_error(exc, label)
        public_kind = kind
        if uniform_errors:
            public_kind, message = anonymous_error(label)
        log.warning("arena stream side %s failed (%s): %r", side, kind, exc)
        outcome.error, outcome.error_kind, outcome.public_kind = message, kind, public_kind
        outcome.raw_error = f"{type(exc).__name__}: {exc}"
        outcome.finished_at = time.time()
        await queue.put(SideEvent("error", side, outcome=outcome))
        return
    finally:
        aclose = getattr(iterator, "aclose", None) if iterator is not None else None
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()
    outcome.finished_at = time.time()
    await queue.put(SideEvent("done", side, outcome=outcome))


async def stream_sides(
    jobs: Mapping[str, tuple[str, Provider | None, ChatCompletionRequest]],
    limits: StreamLimits,
    *,
    uniform_errors: bool = False,
    tick_s: float | None = None,
) -> AsyncIterator[list[SideEvent]]:
    """Run every side's request concurrently; yield their events as they arrive, each time
    all that are waiting (in order), so that the caller can send them in one write.

    ``jobs`` maps a side ("a"/"b") to (public label, provider, request); a side without a
    provider fails as ``unavailable``. Closing the
    iterator (client gone) cancels the sides still running. ``uniform_errors`` (anonymous
    battles): every failed side gets ``anonymous_error``'s kind and message. ``tick_s``:
    an empty batch is yielded after that long without events, so that the caller can send
    what it held back (a throttled render) while the models pause.
    """
    queue: asyncio.Queue[SideEvent] = asyncio.Queue()
    tasks = [
        asyncio.create_task(
            _run_side(
                side, label, provider, request, limits, queue, SideOutcome(side), uniform_errors
            )
        )
        for side, (label, provider, request) in jobs.items()
    ]
    remaining = len(tasks)
    try:
        while remaining:
            try:
                async with asyncio.timeout(tick_s):
                    batch = [await queue.get()]
            except TimeoutError:
                yield []
                continue
            while not queue.empty():
                batch.append(queue.get_nowait())
            remaining -= sum(1 for event in batch if event.kind in ("done", "error"))
            yield batch
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def sse(event: str, data: object) -> bytes:
    """One SSE frame; JSON keeps any newline in the data on one ``data:`` line."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {body}\n\n".encode()


class EventStream(StreamingResponse):
    """An SSE response that always runs ``on_close`` once it is done with the client,
    even when the body was never started (the client left before the first byte)."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], *, on_close: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type=self.media_type,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Close the producer now (not at garbage collection), so an interrupted turn
            # is recorded and its upstream streams cancelled before the battle is released.
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    with contextlib.suppress(Exception):
                        await aclose()
            self._on_close()
