"""Run ASGI apps for real on loopback, and stream responses that notice a client leaving.

``serve_app(app)`` starts uvicorn in a background thread on 127.0.0.1, port 0 (the OS picks
a free port), waits until it accepts connections, yields the base URL and shuts it down
on exit. ``StreamedBody`` is a Starlette response for the stand-ins: it streams an async
iterator of byte chunks, cancels it the moment the client disconnects (recording that),
and can drop the connection mid-body to imitate a crashed upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.responses import Response

from support.processes import PROCESS_DEADLINE_S

LOREM = (  # noqa: SIM905 (a readable sentence)
    "the quick brown fox jumps over a lazy dog while seven small birds sing about "
    "rivers mountains and bright summer evenings near the old stone bridge"
).split()


@dataclass
class StandinConfig:
    """How a stand-in upstream behaves, changeable by a test at any time.

    ``fault`` (or a model name ``fault-<mode>``, which wins for that request) is one of:
    an HTTP status as text (``"400"``, ``"401"``, ``"403"``, ``"404"``, ``"429"``, ``"500"``,
    ``"503"``, ``"529"``), ``"context_length"`` (the API's own too-long-prompt 400),
    ``"slow_first_byte"`` (sleep ``delay_s`` before the status line), ``"slow_first_token"``
    (headers at once, first event after ``delay_s``), ``"hang"`` (stop sending after
    ``fault_after`` tokens for ``hang_s``), ``"malformed"`` (a broken JSON event after
    ``fault_after`` tokens), ``"not_object"`` (Anthropic only: an event whose data is valid
    JSON but not an object), ``"drop"`` (close the connection after ``fault_after`` tokens),
    ``"no_done"`` (end the body cleanly without the API's end-of-stream marker),
    ``"error_event"`` (the API's mid-stream error event), ``"keepalive"`` (comments and pings
    between tokens; not a fault), ``"trickle"`` (OpenAI only: ``GET /v1/models`` sends its
    body one byte every ``token_interval_s``, each read well inside any read timeout) or
    ``"not_sse"`` (a JSON body where a stream was asked).
    """

    reply: str | None = None
    token_count: int | None = None
    token_interval_s: float = 0.0
    fault: str | None = None
    # A fault lasts a minute: far longer than any limit a test sets, so the limit (not the
    # stand-in giving up the fault) ends the request even on a busy machine.
    delay_s: float = 60.0
    fault_after: int = 2
    hang_s: float = 60.0
    api_key: str | None = None
    retry_after: str = "7"
    tool_arguments: dict[str, Any] = field(default_factory=lambda: {"city": "Paris"})
    models: list[str] = field(default_factory=lambda: ["standin-model"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnects: int = 0
    disconnected: threading.Event = field(default_factory=threading.Event)

    def fault_for(self, model: str | None) -> str | None:
        if model and model.startswith("fault-"):
            return model.removeprefix("fault-")
        return self.fault

    def record(self, body: dict[str, Any], headers: Any) -> None:
        self.requests.append(body)
        self.headers.append({k.lower(): v for k, v in headers.items()})

    def mark_disconnect(self) -> None:
        self.disconnects += 1
        self.disconnected.set()

    def pieces(self, prompt_text: str, limit: int | None = None) -> list[str]:
        """The answer as a list of "tokens" (words with their trailing space)."""
        if self.token_count is not None:
            words = [LOREM[i % len(LOREM)] for i in range(self.token_count)]
            pieces = [w + " " for w in words[:-1]] + words[-1:]
        else:
            text = self.reply if self.reply is not None else f"Stand-in answer to: {prompt_text}"
            pieces = re.findall(r"\S+\s*", text) or [text]
        return pieces if limit is None else pieces[:limit]


def count_words(text: str) -> int:
    return len(text.split())


def apply_stop(pieces: list[str], stops: list[str]) -> tuple[list[str], str | None]:
    """Cut the answer at the first stop string; return (pieces, the stop string hit)."""
    text = "".join(pieces)
    hits = [(text.find(s), s) for s in stops if s and s in text]
    if not hits:
        return pieces, None
    cut, stop = min(hits)
    kept, total = [], 0
    for p in pieces:
        if total + len(p) <= cut:
            kept.append(p)
            total += len(p)
        else:
            if cut > total:
                kept.append(p[: cut - total])
            break
    return kept, stop


@contextlib.contextmanager
def serve_app(
    app: Any, *, log_level: str = "warning", startup_timeout_s: float = PROCESS_DEADLINE_S
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yield ``http://127.0.0.1:PORT``."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level=log_level,
        access_log=False,
        lifespan="auto",
        ws="none",
        timeout_graceful_shutdown=2,
        # Idle connections stay open for the whole test: a client reusing one from its pool
        # must never race the server closing it (a reset a slow test would hit at random).
        timeout_keep_alive=PROCESS_DEADLINE_S,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server exited during start-up")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("test server did not start in time")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=PROCESS_DEADLINE_S)
        if thread.is_alive():
            raise RuntimeError("test server did not stop in time")


class StreamedBody(Response):
    """Stream ``chunks``; stop producing as soon as the client disconnects.

    ``on_disconnect`` is called (once) when the client went away before the body ended.
    With ``drop=True`` the body is never finished: after the chunks run out the app returns
    mid-response, which makes uvicorn close the connection without the final chunk.
    """

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        status_code: int = 200,
        media_type: str = "text/event-stream; charset=utf-8",
        headers: dict[str, str] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        drop: bool = False,
    ) -> None:
        self.chunks = chunks
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.on_disconnect = on_disconnect
        self.drop = drop
        self.init_headers({"cache-control": "no-cache", **(headers or {})})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )

        async def produce() -> None:
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if not self.drop:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return

        producer = asyncio.ensure_future(produce())
        watcher = asyncio.ensure_future(watch())
        try:
            done, _ = await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (producer, watcher):
                if not task.done():
                    task.cancel()
            with contextlib.suppress(BaseException):
                await producer
            with contextlib.suppress(BaseException):
                await watcher
        if watcher in done and producer not in done and self.on_disconnect is not None:
            self.on_disconnect()
        failed = producer in done and not producer.cancelled() and producer.exception()
        if failed and self.on_disconnect is not None:
            # A send to a client that already left; that is a disconnect too.
            self.on_disconnect()
