"""HTTP plumbing shared by the hosted-API adapters: clients, timeouts, SSE and error mapping.

Timeouts are enforced here, in one place, with four limits (``Timeouts``):

* ``connect`` — opening the TCP/TLS connection (httpx's connect timeout);
* ``first_token`` — from sending the request to the first server-sent event (headers
  included; SSE comments do not count, so keep-alive comments cannot hide a stuck model);
* ``idle`` — between two events once the stream has started (comments do not count here
  either);
* ``total`` — the whole request, however steadily the events trickle in.

Each wait is bounded by ``asyncio.timeout`` around a single network read (which usually
holds many events), never around a ``yield``,
so a timeout always fires inside the adapter and becomes ``UpstreamTimeout``; the response
is closed on every exit path (normal end, error, consumer ``aclose()`` or cancellation),
which drops the upstream connection when the body was not fully read.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from arena.errors import (
    ArenaError,
    BadRequest,
    ContextLengthExceeded,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from arena.providers.sse import EventDecoder, ServerSentEvent

# Phrases the engines and hosted APIs use when a prompt does not fit the context window.
_CONTEXT_PATTERNS = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many tokens|"
    r"input token count .* exceeds|exceeds the maximum number of tokens|"
    r"must be <= \d+|input is too long|longer than the model",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_token: float = 120.0
    idle: float = 60.0
    total: float = 600.0

    @classmethod
    def from_settings(cls, settings: Any, total_override: float | None = None) -> Timeouts:
        """Limits from ``Settings``; a model's ``timeout_s`` replaces the whole-request one."""
        base = cls()
        if settings is not None:
            base = cls(
                connect=settings.connect_timeout_s,
                first_token=settings.first_token_timeout_s,
                idle=settings.stream_idle_timeout_s,
                total=settings.request_timeout_s,
            )
        total = total_override or base.total
        return cls(
            connect=base.connect,
            first_token=min(base.first_token, total),
            idle=min(base.idle, total),
            total=total,
        )


def make_client(timeouts: Timeouts, *, max_connections: int = 200) -> httpx.AsyncClient:
    """One pooled keep-alive client per provider. Read limits are ours (see module doc)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=timeouts.connect, read=None, write=timeouts.idle, pool=timeouts.connect
        ),
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        ),
        follow_redirects=False,
    )


def parse_retry_after(headers: httpx.Headers, default: float = 1.0) -> float:
    """Seconds from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def is_context_length_message(message: str) -> bool:
    return bool(_CONTEXT_PATTERNS.search(message))


def error_for_status(
    status: int,
    message: str,
    *,
    label: str,
    headers: httpx.Headers | None = None,
    context_length: bool | None = None,
    credential_problem: bool = False,
) -> ArenaError:
    """Map an upstream HTTP error to our typed error.

    The client's own mistakes (400, 413, 422) keep the upstream's words; problems with our
    credentials or configuration (401, 403, 404) are ours, so they are upstream errors (502).
    """
    if credential_problem or status in (401, 403):
        return UpstreamError(f"{label} refused our credentials or account ({status}): {message}")
    if status == 429:
        retry = parse_retry_after(headers or httpx.Headers())
        return RateLimited(f"{label} is rate limiting us: {message}", retry_after_s=retry)
    if status == 413:
        return PayloadTooLarge(message)
    if status == 408:
        return UpstreamTimeout(f"{label} timed out ({status}): {message}")
    if status == 404:
        return UpstreamError(f"{label} answered 404 (check upstream_model/base_url): {message}")
    if 400 <= status < 500:
        too_long = (
            context_length if context_length is not None else is_context_length_message(message)
        )
        return ContextLengthExceeded(message) if too_long else BadRequest(message)
    return UpstreamError(f"{label} failed with HTTP {status}: {message}")


def error_message_from_body(raw: bytes) -> tuple[str, dict[str, Any]]:
    """The human message in an error body of any of the common shapes, and the parsed body."""
    try:
        doc = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace").strip()
        return (text[:500] or "no error message"), {}
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]  # Gemini's array-shaped stream errors
    if not isinstance(doc, dict):
        return str(doc)[:500], {}
    err = doc.get("error", doc)
    if isinstance(err, str):
        return err, doc
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg") or doc.get("message") or doc.get("detail")
        return str(message or json.dumps(err)[:500]), doc
    return str(doc.get("message") or doc.get("detail") or doc)[:500], doc


class Deadline:
    """The clock of one upstream call: by when the next event is due, and the hard end."""

    __slots__ = ("_due", "_end", "_loop", "started", "timeouts")

    def __init__(self, timeouts: Timeouts) -> None:
        self.timeouts = timeouts
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._end = now + timeouts.total
        self._due = now + timeouts.first_token  # the first event, headers included
        self.started = False

    def event_arrived(self) -> None:
        """An event (not a comment) came: the next one is due within the idle limit."""
        self.started = True
        self._due = self._loop.time() + self.timeouts.idle

    def next_wait(self) -> tuple[float, str]:
        """Seconds the next read may take, and the name of the limit that sets it."""
        now = self._loop.time()
        if self._end <= self._due:
            return max(self._end - now, 0.0), "total"
        return max(self._due - now, 0.0), ("idle" if self.started else "first_token")

    def describe(self, what: str) -> str:
        limits = {
            "first_token": f"no first token within {self.timeouts.first_token:g}s",
            "idle": f"no data for {self.timeouts.idle:g}s mid-stream",
            "total": f"the request took longer than {self.timeouts.total:g}s",
        }
        return limits[what]


@asynccontextmanager
async def open_response(
    client: httpx.AsyncClient,
    request: httpx.Request,
    deadline: Deadline,
    *,
    label: str,
    on_error: Callable[[int, bytes, httpx.Headers], ArenaError],
) -> AsyncIterator[httpx.Response]:
    """Send ``request`` (streamed) within the first-token limit; raise mapped errors for
    error statuses; always close the response."""
    wait, what = deadline.next_wait()
    try:
        async with asyncio.timeout(wait):
            response = await client.send(request, stream=True)
    except TimeoutError:
        raise UpstreamTimeout(f"{label}: {deadline.describe(what)}") from None
    except httpx.TimeoutException:
        raise UpstreamTimeout(
            f"{label}: could not connect within {deadline.timeouts.connect:g}s"
        ) from None
    except httpx.HTTPError as e:
        raise UpstreamError(f"{label}: cannot reach upstream ({type(e).__name__}: {e})") from None
    try:
        if response.status_code >= 400:
            wait, what = deadline.next_wait()
            try:
                async with asyncio.timeout(wait):
                    raw = await response.aread()
            except TimeoutError:
                raise UpstreamTimeout(f"{label}: error body not sent in time") from None
            except httpx.HTTPError:
                raw = b""
            raise on_error(response.status_code, raw, response.headers)
        yield response
    finally:
        await response.aclose()


async def read_json(
    client: httpx.AsyncClient,
    request: httpx.Request,
    timeouts: Timeouts,
    *,
    label: str,
    on_error: Callable[[int, bytes, httpx.Headers], ArenaError],
) -> Any:
    """A plain (non-streamed) JSON call under the whole-request limit."""
    deadline = Deadline(Timeouts(timeouts.connect, timeouts.total, timeouts.total, timeouts.total))
    async with open_response(client, request, deadline, label=label, on_error=on_error) as response:
        try:
            async with asyncio.timeout(max(deadline.next_wait()[0], 0.0)):
                raw = await response.aread()
        except TimeoutError:
            raise UpstreamTimeout(f"{label}: {deadline.describe('total')}") from None
        except httpx.HTTPError as e:
            raise UpstreamError(f"{label}: connection broke ({type(e).__name__})") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise UpstreamError(f"{label}: answered with invalid JSON") from None


async def iter_events(
    response: httpx.Response, deadline: Deadline, *, label: str
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events of ``response``; each network read is bounded by the deadline.

    The first-token limit runs until the first event (comments do not count), the idle
    limit between reads after that."""
    content_type = response.headers.get("content-type", "").partition(";")[0]
    if "text/event-stream" not in content_type:
        raise UpstreamError(f"{label}: expected an event stream, got content type {content_type!r}")
    decoder = EventDecoder()
    chunks = response.aiter_bytes()
    try:
        while True:
            wait, what = deadline.next_wait()
            try:
                async with asyncio.timeout(wait):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UpstreamTimeout(f"{label}: {deadline.describe(what)}") from None
            except httpx.HTTPError as e:
                raise UpstreamError(
                    f"{label}: the stream broke ({type(e).__name__}: {e})"
                ) from None
            events = decoder.feed(chunk)
            if events:
                deadline.event_arrived()
            for event in events:
                yield event
    finally:
        await chunks.aclose()


async def finish_body(events: AsyncIterator[ServerSentEvent]) -> None:
    """Read what follows an end-of-stream marker (normally nothing) so the connection goes
    back to the pool for keep-alive; closing a response mid-body would drop it instead.
    Anything odd after the marker only costs the connection, not the answer."""
    try:
        async for _ in events:
            pass
    except ArenaError:
        pass


def loads_event(data: str, *, label: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise UpstreamError(f"{label}: malformed event data: {data[:200]!r}") from None


def base_url_with_version(base_url: str, version: str) -> str:
    """``https://host`` -> ``https://host/v1``; a URL already ending in a version is kept."""
    base = base_url.rstrip("/")
    if re.search(r"/v\d+(alpha|beta)?\d*$", base):
        return base
    return f"{base}/{version}"
