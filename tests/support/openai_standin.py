"""A local server speaking the OpenAI REST API wire format, with faults a test can switch on.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``POST /v1/embeddings``,
``GET /v1/models`` and Ollama's ``GET /api/tags``. Streams are ``data: {json}`` events ending
with ``data: [DONE]``; errors are ``{"error": {"message", "type", "param", "code"}}`` with
the status codes the real API uses. Behaviour and faults come from a ``StandinConfig``
(see ``support.servers``); every request body and its headers are recorded there.

    config = StandinConfig(reply="Hello there")
    with serve_app(create_app(config)) as base_url:   # base_url + "/v1" is the API root
        ...
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from support.servers import StandinConfig, StreamedBody, apply_stop, count_words

_ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    "400": (400, "invalid_request_error", None, "Invalid value for 'temperature'."),
    "context_length": (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 128 tokens. However, your messages resulted "
        "in 4000 tokens. Please reduce the length of the messages.",
    ),
    "401": (401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    "403": (403, "invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    "404": (404, "invalid_request_error", "model_not_found", "The model does not exist."),
    "429": (429, "requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    "500": (500, "server_error", None, "The server had an error while processing your request."),
    "503": (503, "server_error", None, "The engine is currently overloaded."),
    "529": (529, "server_error", None, "Overloaded."),
}


def error_response(fault: str, config: StandinConfig) -> JSONResponse:
    status, etype, code, message = _ERRORS[fault]
    headers = {"retry-after": config.retry_after} if status == 429 else {}
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _image_count(messages: list[dict[str, Any]]) -> int:
    return sum(
        1
        for m in messages
        if isinstance(m.get("content"), list)
        for p in m["content"]
        if p.get("type") == "image_url"
    )


class _Answer:
    """What one choice will say, computed from the request and the config."""

    def __init__(self, body: dict[str, Any], config: StandinConfig, prompt_text: str) -> None:
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        pieces = config.pieces(prompt_text)
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        pieces, _hit = apply_stop(pieces, stops)
        self.finish = "stop"
        if limit is not None and len(pieces) > limit:
            pieces, self.finish = pieces[:limit], "length"
        self.pieces = pieces
        self.tool_call: dict[str, Any] | None = None
        tools = body.get("tools")
        last = (body.get("messages") or [{}])[-1]
        if tools and body.get("tool_choice") != "none" and last.get("role") != "tool":
            name = tools[0]["function"]["name"]
            self.tool_call = {
                "id": "call_" + uuid.uuid4().hex[:20],
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(config.tool_arguments)},
            }
            self.pieces, self.finish = [], "tool_calls"
        if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            self.pieces = ['{"answer": ', json.dumps("".join(self.pieces)), "}"]


def _logprobs(piece: str) -> dict[str, Any]:
    return {
        "content": [
            {"token": piece, "logprob": -0.25, "bytes": list(piece.encode()), "top_logprobs": []}
        ]
    }


def create_app(config: StandinConfig | None = None) -> Starlette:
    config = config or StandinConfig()

    async def read(request: Request) -> tuple[dict[str, Any], Response | None]:
        body = await request.json()
        config.record(body, request.headers)
        if config.api_key and request.headers.get("authorization") != f"Bearer {config.api_key}":
            return body, error_response("401", config)
        fault = config.fault_for(body.get("model"))
        if fault == "slow_first_byte":
            await asyncio.sleep(config.delay_s)
        if fault in _ERRORS:
            return body, error_response(fault, config)
        return body, None

    async def chat(request: Request) -> Response:
        body, failed = await read(request)
        if failed is not None:
            return failed
        messages = body.get("messages") or []
        if not messages:
            return JSONResponse(
                {
                    "error": {
                        "message": "[] is too short - 'messages'",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": None,
                    }
                },
                status_code=400,
            )
        user_texts = [_message_text(m) for m in messages if m.get("role") == "user"]
        prompt_text = user_texts[-1] if user_texts else ""
        images = _image_count(messages)
        if images:
            prompt_text = f"{prompt_text} [{images} image(s)]"
        prompt_tokens = sum(count_words(_message_text(m)) for m in messages) + 85 * images
        n = body.get("n") or 1
        answers = [_Answer(body, config, prompt_text) for _ in range(n)]
        completion_tokens = sum(len(a.pieces) + (5 if a.tool_call else 0) for a in answers)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        model = body.get("model", "")
        fault = config.fault_for(model)
        if not body.get("stream") or fault == "not_sse":
            choices = []
            for i, a in enumerate(answers):
                message: dict[str, Any] = {
                    "role": "assistant",
                    "content": None if a.tool_call else "".join(a.pieces),
                    "refusal": None,
                }
                if a.tool_call:
                    message["tool_calls"] = [a.tool_call]
                choices.append(
                    {
                        "index": i,
                        "message": message,
                        "logprobs": _logprobs("".join(a.pieces)) if body.get("logprobs") else None,
                        "finish_reason": a.finish,
                    }
                )
            return JSONResponse(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": choices,
                    "usage": usage,
                    "system_fingerprint": "fp_standin",
                }
            )

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list[dict[str, Any]], usage_: Any = None) -> bytes:
            obj: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_standin",
                "choices": choices,
            }
            if include_usage:
                obj["usage"] = usage_
            return _sse(obj)

        async def events() -> AsyncIterator[bytes]:
            if fault == "slow_first_token":
                yield b": waiting\n\n"
                await asyncio.sleep(config.delay_s)
            for i in range(n):
                yield chunk(
                    [
                        {
                            "index": i,
                            "delta": {"role": "assistant", "content": "", "refusal": None},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ]
                )
            sent = 0
            for i, a in enumerate(answers):
                if a.tool_call:
                    call = a.tool_call
                    args = call["function"]["arguments"]
                    head = {
                        "index": 0,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    }
                    parts = [args[: len(args) // 2], args[len(args) // 2 :]]
                    yield chunk(
                        [{"index": i, "delta": {"tool_calls": [head]}, "finish_reason": None}]
                    )
                    for part in parts:
                        delta = {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
                        yield chunk([{"index": i, "delta": delta, "finish_reason": None}])
                for piece in a.pieces:
                    if sent == config.fault_after and fault in (
                        "hang",
                        "hang_with_pings",
                        "malformed",
                        "drop",
                        "no_done",
                        "error_event",
                    ):
                        if fault == "hang":
                            await asyncio.sleep(config.hang_s)
                        elif fault == "hang_with_pings":  # alive, but no more tokens
                            deadline = time.monotonic() + config.hang_s
                            while time.monotonic() < deadline:
                                yield b": ping\n\n"
                                await asyncio.sleep(0.05)
                        elif fault == "malformed":
                            yield b'data: {"id": "chatcmpl-broken", "choices": [{"ind\n\n'
                        elif fault == "error_event":
                            yield _sse(
                                {
                                    "error": {
                                        "message": "The server had an error mid-stream.",
                                        "type": "server_error",
                                        "param": None,
                                        "code": None,
                                    }
                                }
                            )
                        return
                    if config.token_interval_s:
                        await asyncio.sleep(config.token_interval_s)
                    if fault == "keepalive":
                        yield b": keep-alive\n\n"
                    choice: dict[str, Any] = {
                        "index": i,
                        "delta": {"content": piece},
                        "logprobs": _logprobs(piece) if body.get("logprobs") else None,
                        "finish_reason": None,
                    }
                    yield chunk([choice])
                    sent += 1
                yield chunk(
                    [{"index": i, "delta": {}, "logprobs": None, "finish_reason": a.finish}]
                )
            if include_usage:
                yield chunk([], usage)
            yield b"data: [DONE]\n\n"

        return StreamedBody(events(), on_disconnect=config.mark_disconnect, drop=fault == "drop")

    async def completions(request: Request) -> Response:
        body, failed = await read(request)
        if failed is not None:
            return failed
        prompt = body.get("prompt", "")
        prompts = prompt if isinstance(prompt, list) else [prompt]
        body = {**body, "max_tokens": body.get("max_tokens", 16)}
        answers = [
            _Answer(body, config, str(p)) for p in prompts for _ in range(body.get("n") or 1)
        ]
        prompt_tokens = sum(count_words(str(p)) for p in prompts)
        completion_tokens = sum(len(a.pieces) for a in answers)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        cid = "cmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        model = body.get("model", "")
        fault = config.fault_for(model)
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": cid,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "text": "".join(a.pieces),
                            "index": i,
                            "logprobs": None,
                            "finish_reason": a.finish,
                        }
                        for i, a in enumerate(answers)
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events() -> AsyncIterator[bytes]:
            sent = 0
            for i, a in enumerate(answers):
                for piece in a.pieces:
                    if sent == config.fault_after and fault in ("hang", "drop", "malformed"):
                        if fault == "hang":
                            await asyncio.sleep(config.hang_s)
                        elif fault == "malformed":
                            yield b"data: {oops\n\n"
                        return
                    if config.token_interval_s:
                        await asyncio.sleep(config.token_interval_s)
                    obj = {
                        "id": cid,
                        "object": "text_completion",
                        "created": created,
                        "model": model,
                        "choices": [
                            {"text": piece, "index": i, "logprobs": None, "finish_reason": None}
                        ],
                    }
                    yield _sse(obj)
                    sent += 1
                yield _sse(
                    {
                        "id": cid,
                        "object": "text_completion",
                        "created": created,
                        "model": model,
                        "choices": [
                            {"text": "", "index": i, "logprobs": None, "finish_reason": a.finish}
                        ],
                    }
                )
            if include_usage:
                yield _sse(
                    {
                        "id": cid,
                        "object": "text_completion",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            yield b"data: [DONE]\n\n"

        return StreamedBody(events(), on_disconnect=config.mark_disconnect, drop=fault == "drop")

    async def embeddings(request: Request) -> Response:
        body, failed = await read(request)
        if failed is not None:
            return failed
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = body.get("dimensions") or 8
        data = []
        for i, text in enumerate(texts):
            digest = hashlib.sha256(str(text).encode()).digest()
            vector = [(digest[k % len(digest)] - 128) / 128 for k in range(dims)]
            if body.get("encoding_format") == "base64":
                packed = struct.pack(f"<{dims}f", *vector)
                value: Any = base64.b64encode(packed).decode()
            else:
                value = vector
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(count_words(str(t)) for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(request: Request) -> Response:
        if config.fault in _ERRORS:
            return error_response(config.fault, config)
        doc = {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "standin"}
                for m in config.models
            ],
        }
        if config.fault == "trickle":
            raw = json.dumps(doc).encode()

            async def one_byte_at_a_time() -> AsyncIterator[bytes]:
                for i in range(len(raw)):
                    await asyncio.sleep(config.token_interval_s or 0.2)
                    yield raw[i : i + 1]

            return StreamedBody(
                one_byte_at_a_time(),
                media_type="application/json",
                on_disconnect=config.mark_disconnect,
            )
        return JSONResponse(doc)

    async def ollama_tags(request: Request) -> Response:
        return JSONResponse(
            {
                "models": [
                    {
                        "name": m,
                        "model": m,
                        "modified_at": "2024-06-01T10:00:00.000000000Z",
                        "size": 4661224676,
                        "digest": hashlib.sha256(m.encode()).hexdigest(),
                        "details": {"format": "gguf", "family": "llama"},
                    }
                    for m in config.models
                ]
            }
        )

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/api/tags", ollama_tags, methods=["GET"]),
        ]
    )
