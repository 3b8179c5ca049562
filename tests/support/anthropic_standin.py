"""A local server speaking the Anthropic Messages API wire format, with switchable faults.

``POST /v1/messages`` (plain JSON or ``stream: true`` SSE with ``event:`` lines:
message_start, content_block_start/delta/stop, ping, message_delta, message_stop, error)
and ``GET /v1/models``. Errors are ``{"type": "error", "error": {"type", "message"},
"request_id"}`` with the API's statuses (400, 401, 403, 404, 413, 429 + retry-after,
500, 529). Requests need ``anthropic-version``; ``max_tokens`` is required. Behaviour
comes from a ``StandinConfig`` (``support.servers``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from support.servers import StandinConfig, StreamedBody, apply_stop, count_words

_ERRORS: dict[str, tuple[int, str, str]] = {
    "400": (400, "invalid_request_error", "temperature: range: 0..1"),
    "context_length": (
        400,
        "invalid_request_error",
        "prompt is too long: 215000 tokens > 200000 maximum",
    ),
    "401": (401, "authentication_error", "invalid x-api-key"),
    "403": (403, "permission_error", "Your API key does not have permission to use this model."),
    "404": (404, "not_found_error", "model: claude-nonexistent"),
    "413": (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
    "429": (429, "rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    "500": (500, "api_error", "Internal server error"),
    "503": (503, "api_error", "Service unavailable"),
    "529": (529, "overloaded_error", "Overloaded"),
}


def error_response(status: int, etype: str, message: str, headers: dict[str, str] | None = None):
    body = {
        "type": "error",
        "error": {"type": etype, "message": message},
        "request_id": "req_" + uuid.uuid4().hex[:24],
    }
    return JSONResponse(body, status_code=status, headers=headers or {})


def _event(name: str, obj: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content if b.get("type") == "text")


def _check_blocks(messages: list[dict[str, Any]]) -> str | None:
    """The API's own validation of content blocks, for the parts we translate."""
    for i, m in enumerate(messages):
        if m.get("role") not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        content = m.get("content")
        if isinstance(content, str):
            continue
        for j, block in enumerate(content or []):
            btype = block.get("type")
            if btype == "image":
                source = block.get("source") or {}
                if source.get("type") == "base64":
                    if source.get("media_type") not in (
                        "image/jpeg",
                        "image/png",
                        "image/gif",
                        "image/webp",
                    ):
                        return f"messages.{i}.content.{j}.image.source.base64.media_type: invalid"
                    if not source.get("data"):
                        return f"messages.{i}.content.{j}.image.source.base64.data: Field required"
                elif source.get("type") == "url":
                    if not str(source.get("url", "")).startswith("http"):
                        return f"messages.{i}.content.{j}.image.source.url: invalid url"
                else:
                    return f"messages.{i}.content.{j}.image.source: invalid source type"
            elif btype not in ("text", "tool_use", "tool_result"):
                return f"messages.{i}.content.{j}.type: unknown block type {btype!r}"
    return None


def create_app(config: StandinConfig | None = None) -> Starlette:
    config = config or StandinConfig()

    async def messages(request: Request) -> Response:
        body = await request.json()
        config.record(body, request.headers)
        if not request.headers.get("anthropic-version"):
            return error_response(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        if config.api_key and request.headers.get("x-api-key") != config.api_key:
            return error_response(401, "authentication_error", "invalid x-api-key")
        model = body.get("model", "")
        fault = config.fault_for(model)
        if fault == "slow_first_byte":
            await asyncio.sleep(config.delay_s)
        if fault in _ERRORS:
            status, etype, message = _ERRORS[fault]
            headers = {"retry-after": config.retry_after} if status == 429 else None
            return error_response(status, etype, message, headers)
        if "max_tokens" not in body:
            return error_response(400, "invalid_request_error", "max_tokens: Field required")
        msgs = body.get("messages") or []
        problem = _check_blocks(msgs)
        if problem:
            return error_response(400, "invalid_request_error", problem)
        users = [m for m in msgs if m.get("role") == "user"]
        prompt_text = _text_of(users[-1]["content"]) if users else ""
        images = sum(
            1
            for m in msgs
            if isinstance(m.get("content"), list)
            for b in m["content"]
            if b.get("type") == "image"
        )
        if images:
            prompt_text = f"{prompt_text} [{images} image(s)]"
        system = body.get("system") or ""
        input_tokens = count_words(_text_of(system)) + sum(
            count_words(_text_of(m["content"])) for m in msgs
        )
        pieces = config.pieces(prompt_text)
        pieces, hit = apply_stop(pieces, body.get("stop_sequences") or [])
        stop_reason, stop_sequence = ("stop_sequence", hit) if hit else ("end_turn", None)
        if len(pieces) > body["max_tokens"]:
            pieces, stop_reason, stop_sequence = pieces[: body["max_tokens"]], "max_tokens", None
        tool = None
        last = msgs[-1] if msgs else {}
        last_is_result = isinstance(last.get("content"), list) and any(
            b.get("type") == "tool_result" for b in last["content"]
        )
        if (
            body.get("tools")
            and (body.get("tool_choice") or {}).get("type") != "none"
            and not last_is_result
        ):
            tool = {
                "type": "tool_use",
                "id": "toolu_" + uuid.uuid4().hex[:24],
                "name": body["tools"][0]["name"],
                "input": config.tool_arguments,
            }
            stop_reason, stop_sequence = "tool_use", None
        output_tokens = len(pieces) + (8 if tool else 0)
        mid = "msg_" + uuid.uuid4().hex[:24]

        if not body.get("stream") or fault == "not_sse":
            content: list[dict[str, Any]] = [{"type": "text", "text": "".join(pieces)}]
            if tool:
                content.append(tool)
            return JSONResponse(
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop_reason,
                    "stop_sequence": stop_sequence,
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
                }
            )

        async def events() -> AsyncIterator[bytes]:
            if fault == "slow_first_token":
                yield b": waiting\n\n"
                await asyncio.sleep(config.delay_s)
            yield _event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": mid,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {
                            "input_tokens": input_tokens,
                            "output_tokens": 1,
                            "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0,
                        },
                    },
                },
            )
            yield _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            yield _event("ping", {"type": "ping"})
            for sent, piece in enumerate(pieces):
                if sent == config.fault_after and fault in (
                    "hang",
                    "malformed",
                    "not_object",
                    "drop",
                    "no_done",
                    "error_event",
                ):
                    if fault == "hang":
                        await asyncio.sleep(config.hang_s)
                    elif fault == "malformed":
                        yield b'event: content_block_delta\ndata: {"type": "content_bl\n\n'
                    elif fault == "not_object":  # valid JSON, but not an event object
                        yield b"event: content_block_delta\ndata: [1, 2]\n\n"
                    elif fault == "error_event":
                        yield _event(
                            "error",
                            {
                                "type": "error",
                                "error": {"type": "overloaded_error", "message": "Overloaded"},
                            },
                        )
                    return
                if config.token_interval_s:
                    await asyncio.sleep(config.token_interval_s)
                if fault == "keepalive":
                    yield _event("ping", {"type": "ping"})
                yield _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            yield _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            if tool:
                yield _event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 1,
                        "content_block": {
                            "type": "tool_use",
                            "id": tool["id"],
                            "name": tool["name"],
                            "input": {},
                        },
                    },
                )
                args = json.dumps(tool["input"])
                for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                    yield _event(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": 1,
                            "delta": {"type": "input_json_delta", "partial_json": part},
                        },
                    )
                yield _event("content_block_stop", {"type": "content_block_stop", "index": 1})
            yield _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                    "usage": {"output_tokens": output_tokens},
                },
            )
            yield _event("message_stop", {"type": "message_stop"})

        return StreamedBody(events(), on_disconnect=config.mark_disconnect, drop=fault == "drop")

    async def models(request: Request) -> Response:
        return JSONResponse(
            {
                "data": [
                    {
                        "type": "model",
                        "id": m,
                        "display_name": m,
                        "created_at": "2025-01-01T00:00:00Z",
                    }
                    for m in config.models
                ],
                "has_more": False,
                "first_id": config.models[0] if config.models else None,
                "last_id": config.models[-1] if config.models else None,
            }
        )

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )
