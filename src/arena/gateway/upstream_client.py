"""The one HTTP client the gateway shares among its OpenAI-compatible upstreams and workers.

httpx's own connection pool (httpcore) scans every pooled connection on each request and
parses HTTP in pure Python; at a few hundred concurrent streams that costs more than the
rest of the hop. When ``httpx-aiohttp`` is installed the shared client runs on aiohttp's
transport instead (C HTTP parser, cheap pool) while the adapters keep their httpx code.

The transport's error mapping turns every aiohttp connection error into
``httpx.ConnectTimeout``; here a refused connection becomes ``ConnectError`` and a
connection lost mid-body ``ReadError``, so upstream failures keep their right status
(502, not 504). Providers call ``aclose()`` on their client when they retire (a worker
that went away); the shared client ignores that and is closed once, by the gateway.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx

log = logging.getLogger("arena.gateway")


def _real_cause(error: BaseException) -> BaseException | None:
    cause = error.__cause__
    if cause is None:
        return None
    try:
        import aiohttp
    except ImportError:
        return None
    timeouts = (aiohttp.ServerTimeoutError, TimeoutError)
    return None if isinstance(cause, timeouts) else cause


class _Body(httpx.AsyncByteStream):
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.ConnectTimeout as e:
            cause = _real_cause(e)
            if cause is None:
                raise
            raise httpx.ReadError(f"connection lost: {cause}") from cause

    async def aclose(self) -> None:
        await self._inner.aclose()


def _aiohttp_transport(max_connections: int) -> httpx.AsyncBaseTransport | None:
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:
        return None

    class Transport(AiohttpTransport):  # type: ignore[misc, valid-type]
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                response = await super().handle_async_request(request)
            except httpx.ConnectTimeout as e:
                cause = _real_cause(e)
                if cause is None:
                    raise
                raise httpx.ConnectError(f"cannot connect: {cause}", request=request) from cause
            response.stream = _Body(response.stream)
            return response

    return Transport(
        limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=30.0),
        trust_env=False,
    )


class SharedUpstreamClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` many providers share; only ``close()`` closes it."""

    async def aclose(self) -> None:
        """Ignored: a provider retiring must not close its siblings' client."""

    async def close(self) -> None:
        await super().aclose()


def make_upstream_client(
    *, connect_timeout_s: float, write_timeout_s: float, max_connections: int = 4096
) -> SharedUpstreamClient:
    """The gateway's client; read limits are the adapters' own (per-read timers)."""
    transport = _aiohttp_transport(max_connections)
    if transport is None:
        log.info("httpx-aiohttp is not installed; using httpx's own transport")
    return SharedUpstreamClient(
        transport=transport,
        timeout=httpx.Timeout(
            connect=connect_timeout_s, read=None, write=write_timeout_s, pool=connect_timeout_s
        ),
        limits=httpx.Limits(max_connections=max_connections, keepalive_expiry=30.0),
        follow_redirects=False,
        trust_env=False,
    )
