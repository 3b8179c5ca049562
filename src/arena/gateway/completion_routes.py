"""``/v1/chat/completions`` and ``/v1/completions``: admit the request, stream from the first
backend that answers (failing over before the first token), and relay the stream as SSE or fold
it into one JSON body; metrics and token limits are settled once per request."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from arena.errors import ArenaError
from arena.gateway.app_state import CLIENT_CLOSED, Gateway, json_response
from arena.gateway.auth import Caller
from arena.gateway.client_connection import (
    ClientDisconnected,
    EventStreamResponse,
    cancel_on_disconnect,
)
from arena.gateway.routed_models import ROUTED_HEADER, route_targets
from arena.gateway.routing import DeltaStream, open_stream
from arena.gateway.streaming import (
    DONE,
    ChunkEncoder,
    DeltaFold,
    RawChunkRelay,
    parse_chunk,
    sse_error,
)
from arena.protocol import ChatCompletionRequest, CompletionRequest, StreamOptions, new_id, now_s
from arena.providers.base import TokenUsage

log = logging.getLogger("arena.gateway")


def estimate_usage(prompt_chars: int, fold: DeltaFold) -> TokenUsage:
    """Used only when a backend reports no usage: ~4 characters per prompt token, one
    token per streamed text delta (what token-by-token backends send)."""
    return TokenUsage(prompt_tokens=math.ceil(prompt_chars / 4), completion_tokens=fold.text_deltas)


async def chat_completions(request: Request) -> Response:
    return await _generate(request, chat=True)


async def completions(request: Request) -> Response:
    return await _generate(request, chat=False)


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
        targets, routed = await route_targets(gw, targets, body)
        answering = routed or body.model  # the response's ``model``: who really answered
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
                ChunkEncoder(response_id=response_id, created=created, model=answering, chat=chat),
                caller=caller,
                endpoint=endpoint,
                model=body.model,
                answering=answering,
                include_usage=body.wants_usage_chunk(),
                prompt_chars=_prompt_chars(body),
                started=started,
            )
            handed_off = True
            headers = {"x-arena-backend": stream.target.label}
            if routed:
                headers[ROUTED_HEADER] = routed
            return EventStreamResponse(run.events(), on_close=run.close, headers=headers)

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
            payload = fold.chat_body(response_id=response_id, created=created, model=answering)
        else:
            payload = fold.completion_body(
                response_id=response_id, created=created, model=answering
            )
        status = 200
        response = json_response(payload)
        response.headers["x-arena-backend"] = backend
        if routed:
            response.headers[ROUTED_HEADER] = routed
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
        answering: str | None = None,
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
            public_model=answering or model,
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
