"""A pooled keep-alive connection that the upstream closes just as a request goes out on it
is not the upstream's failure: the call goes through on a new connection. An upstream that
really fails (closes every connection unanswered) still fails, once per call, promptly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from arena.errors import UpstreamError
from arena.providers.upstream_errors import error_for_status
from arena.providers.upstream_http import (
    Timeouts,
    UpstreamClient,
    UpstreamRequest,
    read_json,
)

ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n"
    b'connection: keep-alive\r\n\r\n{"ok":true}'
)
TIMEOUTS = Timeouts(connect=30, first_token=60, idle=60, total=60)


async def _read_request(reader: asyncio.StreamReader) -> bool:
    """Read one request's head and body; False at end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return True


@contextlib.asynccontextmanager
async def _upstream(answers_per_connection: int) -> AsyncIterator[tuple[str, list[int]]]:
    """An HTTP/1.1 upstream that answers ``answers_per_connection`` requests on each
    connection, then closes it unanswered when the next request arrives on it (the race an
    idle-connection timeout produces). Yields its URL and the requests seen per connection."""
    seen: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(0)
        index = len(seen) - 1
        try:
            while await _read_request(reader):
                seen[index] += 1
                if seen[index] > answers_per_connection:
                    break
                writer.write(ANSWER)
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1/thing", seen
    finally:
        server.close()
        await server.wait_closed()


def _error(status: int, body: bytes, headers) -> Exception:
    return error_for_status(status, body.decode(errors="replace"), label="stand-in")


def _call(client: UpstreamClient, url: str):
    request = UpstreamRequest("POST", url, {}, json={"q": 1})
    return read_json(client, request, TIMEOUTS, label="stand-in", on_error=_error)


async def test_a_connection_closed_as_it_is_reused_is_replaced_not_reported():
    client = UpstreamClient(connect_timeout_s=30)
    try:
        async with _upstream(answers_per_connection=1) as (url, seen):
            assert await _call(client, url) == {"ok": True}
            assert await _call(client, url) == {"ok": True}  # the pooled one is closed on it
            assert await _call(client, url) == {"ok": True}
        assert client.connections_opened == 3
        assert seen == [2, 2, 1]  # each reused connection got one request it never answered
    finally:
        await client.close()


async def test_an_upstream_that_never_answers_still_fails():
    client = UpstreamClient(connect_timeout_s=30)
    try:
        async with _upstream(answers_per_connection=0) as (url, seen):
            with pytest.raises(UpstreamError, match="cannot reach upstream"):
                await _call(client, url)
        assert seen == [1, 1]  # the request and its one retry, nothing more
    finally:
        await client.close()
