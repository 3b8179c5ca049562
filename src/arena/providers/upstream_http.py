"""HTTP plumbing shared by the hosted-API adapters: clients, timeouts and SSE (the error
mapping lives in ``upstream_errors``).

Upstream calls go through aiohttp (``UpstreamClient``): its C HTTP parser and cheap pool
keep the gateway's own cost per relayed request low, which is what a proxy is judged by.

Timeouts are enforced here, in one place, with four limits (``Timeouts``):

* ``connect`` — opening the TCP/TLS connection (the pool's connect timeout);
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
import errno
import json
import re
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from arena.errors import ArenaError, UpstreamError, UpstreamTimeout
from arena.providers.sse import EventDecoder, ServerSentEvent
from arena.providers.upstream_errors import sanitize_upstream_text


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


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """One call to make: the body is sent as JSON when given."""

    method: str
    url: str
    headers: Mapping[str, str]
    json: Any = None


class UpstreamClient:
    """A pooled keep-alive aiohttp session for upstream calls. Read limits are ours (see
    the module docstring); the pool only bounds connecting.

    The session is opened on first use, inside the running event loop. ``shared=True``
    makes ``aclose`` a no-op, for one client that many providers use (the gateway's);
    its owner calls ``close``. ``socket_factory`` creates each connection's socket from
    the exact address about to be dialled, so it can refuse addresses (raise ``OSError``)
    whatever a host name resolves to at that moment. The counters feed tests and metrics.
    """

    def __init__(
        self,
        *,
        connect_timeout_s: float = 10.0,
        max_connections: int = 200,
        keepalive_s: float = 30.0,
        shared: bool = False,
        socket_factory: Callable[[tuple[Any, ...]], socket.socket] | None = None,
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.socket_factory = socket_factory
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self.shared = shared
        self.requests_sent = 0
        self.responses_open = 0
        self.connections_opened = 0
        self.is_closed = False
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self.is_closed:
            raise UpstreamError("the upstream client was closed")
        if self._session is None:
            trace = aiohttp.TraceConfig()
            trace.on_connection_create_end.append(self._connection_opened)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections,
                    keepalive_timeout=self.keepalive_s,
                    socket_factory=self.socket_factory,
                ),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.connect_timeout_s, connect=None
                ),
                trust_env=False,
                auto_decompress=True,
                trace_configs=[trace],
            )
        return self._session

    async def _connection_opened(self, *_: Any) -> None:
        self.connections_opened += 1

    async def get(self, url: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """A plain GET (health probes); the caller bounds the time."""
        self.requests_sent += 1
        async with self.session.get(url, headers=headers, allow_redirects=False) as response:
            return response.status, await response.read()

    async def aclose(self) -> None:
        """Close the pool, unless it is shared (then its owner closes it)."""
        if not self.shared:
            await self.close()

    async def close(self) -> None:
        self.is_closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None


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


ErrorMapper = Callable[[int, bytes, Mapping[str, str]], ArenaError]


def _closed_before_answering(error: aiohttp.ClientError) -> bool:
    """The connection was closed or reset before any response byte arrived."""
    if isinstance(error, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return True
    return isinstance(error, aiohttp.ClientOSError) and error.errno in (
        errno.ECONNRESET,
        errno.EPIPE,
    )


@asynccontextmanager
async def open_response(
    client: UpstreamClient,
    request: UpstreamRequest,
    deadline: Deadline,
    *,
    label: str,
    on_error: ErrorMapper,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Send ``request`` and wait for its headers within the first-token limit; raise mapped
    errors for error statuses. On exit the response is released: back to the pool when its
    body was read to the end, otherwise closed, which drops the upstream connection."""
    wait, what = deadline.next_wait()
    body = None if request.json is None else orjson.dumps(request.json)
    headers = dict(request.headers)
    if body is not None:
        headers.setdefault("content-type", "application/json")
    client.requests_sent += 1
    try:
        async with asyncio.timeout(wait):
            try:
                response = await client.session.request(
                    request.method, request.url, data=body, headers=headers, allow_redirects=False
                )
            except aiohttp.ClientError as e:
                if not _closed_before_answering(e):
                    raise
                # The upstream closed a pooled keep-alive connection as the request went out
                # (idle-connection close racing reuse): it never answered it, so one new
                # connection is safe. A plain try, not a retry library: this is the hot path.
                client.requests_sent += 1
                response = await client.session.request(
                    request.method, request.url, data=body, headers=headers, allow_redirects=False
                )
    except aiohttp.ConnectionTimeoutError:
        raise UpstreamTimeout(
            f"{label}: could not connect within {deadline.timeouts.connect:g}s"
        ) from None
    except TimeoutError:
        raise UpstreamTimeout(f"{label}: {deadline.describe(what)}") from None
    except aiohttp.ClientError as e:
        reason = sanitize_upstream_text(str(e), limit=120)
        raise UpstreamError(
            f"{label}: cannot reach upstream ({type(e).__name__}: {reason})"
        ) from None
    client.responses_open += 1
    try:
        if response.status >= 400:
            wait, what = deadline.next_wait()
            try:
                async with asyncio.timeout(wait):
                    raw = await response.read()
            except TimeoutError:
                raise UpstreamTimeout(f"{label}: error body not sent in time") from None
            except aiohttp.ClientError:
                raw = b""
            raise on_error(response.status, raw, response.headers)
        yield response
    finally:
        client.responses_open -= 1
        if response.content.is_eof():
            response.release()
        else:
            response.close()


async def read_json(
    client: UpstreamClient,
    request: UpstreamRequest,
    timeouts: Timeouts,
    *,
    label: str,
    on_error: ErrorMapper,
) -> Any:
    """A plain (non-streamed) JSON call under the whole-request limit."""
    deadline = Deadline(Timeouts(timeouts.connect, timeouts.total, timeouts.total, timeouts.total))
    async with open_response(client, request, deadline, label=label, on_error=on_error) as response:
        try:
            async with asyncio.timeout(max(deadline.next_wait()[0], 0.0)):
                raw = await response.read()
        except TimeoutError:
            raise UpstreamTimeout(f"{label}: {deadline.describe('total')}") from None
        except aiohttp.ClientError as e:
            raise UpstreamError(f"{label}: connection broke ({type(e).__name__})") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise UpstreamError(f"{label}: answered with invalid JSON") from None


async def iter_event_batches(
    response: aiohttp.ClientResponse, deadline: Deadline, *, label: str
) -> AsyncIterator[list[ServerSentEvent]]:
    """Server-sent events of ``response``, as the lists that each network read completes
    (never empty); each read is bounded by the deadline. Handing on a read's events
    together saves a generator step per event in every layer above.

    The first-token limit runs until the first event (comments do not count), the idle
    limit between events after that."""
    content_type = response.headers.get("content-type", "").partition(";")[0]
    if "text/event-stream" not in content_type:
        shown = sanitize_upstream_text(content_type, limit=60)
        raise UpstreamError(f"{label}: expected an event stream, got content type {shown!r}")
    decoder = EventDecoder()
    content = response.content
    while True:
        wait, what = deadline.next_wait()
        try:
            async with asyncio.timeout(wait):
                chunk = await content.readany()
        except TimeoutError:
            raise UpstreamTimeout(f"{label}: {deadline.describe(what)}") from None
        except (aiohttp.ClientError, OSError) as e:
            reason = sanitize_upstream_text(str(e), limit=120)
            raise UpstreamError(
                f"{label}: the stream broke ({type(e).__name__}: {reason})"
            ) from None
        if not chunk:
            return  # the end of the body
        events = decoder.feed(chunk)
        if events:
            deadline.event_arrived()
            yield events


async def iter_events(
    response: aiohttp.ClientResponse, deadline: Deadline, *, label: str
) -> AsyncIterator[ServerSentEvent]:
    """The same events one at a time, for adapters that translate each event."""
    async with aclosing(iter_event_batches(response, deadline, label=label)) as batches:
        async for events in batches:
            for event in events:
                yield event


async def finish_body(events: AsyncIterator[Any]) -> None:
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
        shown = sanitize_upstream_text(data, limit=80)
        raise UpstreamError(f"{label}: malformed event data: {shown!r}") from None


def base_url_with_version(base_url: str, version: str) -> str:
    """``https://host`` -> ``https://host/v1``; a URL already ending in a version is kept."""
    base = base_url.rstrip("/")
    if re.search(r"/v\d+(alpha|beta)?\d*$", base):
        return base
    return f"{base}/{version}"
