"""Noticing a client that leaves, so its upstream generation is cancelled at once.

``EventStreamResponse`` streams SSE bytes while watching for ``http.disconnect``; when the
client goes, the producer (and with it the backend stream it is awaiting) is cancelled,
and ``on_close`` always runs exactly once, whether the stream finished, failed, or was
never started. ``cancel_on_disconnect`` gives non-streaming requests the same behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from starlette.responses import Response

log = logging.getLogger("arena.gateway")
T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection before the answer was ready."""


async def _wait_for_disconnect(receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def cancel_on_disconnect(
    receive: Callable[[], Awaitable[dict[str, Any]]], work: Awaitable[T]
) -> T:
    """Await ``work`` in this task; cancel it if the client disconnects meanwhile."""
    task = asyncio.current_task()
    assert task is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _wait_for_disconnect(receive)
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            task.uncancel()
            raise ClientDisconnected() from None
        raise
    finally:
        watcher.cancel()


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[bytes],
        *,
        on_close: Callable[[bool], Awaitable[None]],
        headers: dict[str, str] | None = None,
    ) -> None:
        """``on_close(client_left)`` runs once after the stream ends for any reason."""
        self.events = events
        self.on_close = on_close
        self.status_code = 200
        self.background = None
        self.init_headers(
            {"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})}
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        client_left = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

            async def produce() -> None:
                async for chunk in self.events:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})

            producer = asyncio.ensure_future(produce())
            watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
            try:
                await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                client_left = watcher.done() and not producer.done()
                for task in (producer, watcher):
                    task.cancel()
                for task in (producer, watcher):
                    with contextlib.suppress(asyncio.CancelledError, OSError):
                        await task
        except OSError:
            client_left = True
        finally:
            with contextlib.suppress(Exception):
                await self.events.aclose()  # type: ignore[attr-defined]
            try:
                await self.on_close(client_left)
            except Exception:
                log.exception("cleaning up after a stream failed")
