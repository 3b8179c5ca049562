"""A local server speaking the Gemini API wire format (REST), with switchable faults.

``POST /v1beta/models/{model}:generateContent`` (JSON) and
``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` (``data: {json}`` events
with CRLF framing, no end marker: every chunk carries ``usageMetadata`` so far, the last
one with ``finishReason`` and the answer's token count), ``GET /v1beta/models/{model}``;
the same under ``/v1`` (the official SDK's default version). Errors are ``{"error":
{"code", "message", "status", "details"?}}``: 400 INVALID_ARGUMENT (and API_KEY_INVALID),
403 PERMISSION_DENIED, 404 NOT_FOUND, 429 RESOURCE_EXHAUSTED with a RetryInfo detail,
500 INTERNAL, 503 UNAVAILABLE. The API key is read from ``x-goog-api-key`` or ``?key=``.
Checked against Google's own SDK in ``tests/providers/test_providers_gemini_sdk.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from support.servers import StandinConfig, StreamedBody, apply_stop, count_words

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_MESSAGES = {
    "400": (400, "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\""),
    "context_length": (
        400,
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
    ),
    "403": (403, "Method doesn't allow unregistered callers."),
    "404": (404, "models/gemini-nonexistent is not found for API version v1beta."),
    "429": (429, "Resource has been exhausted (e.g. check quota)."),
    "500": (500, "An internal error has occurred. Please retry or report."),
    "503": (503, "The model is overloaded. Please try again later."),
}


def error_response(
    status: int, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status)


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\r\n\r\n"


def create_app(config: StandinConfig | None = None) -> Starlette:
    config = config or StandinConfig()

    async def generate(request: Request) -> Response:
        model, _, method = request.path_params["target"].partition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return error_response(404, f"Method {method!r} not found.")
        body = await request.json()
        config.record(
            {**body, "_model": model, "_method": method, "_alt": request.query_params.get("alt")},
            request.headers,
        )
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if config.api_key and key != config.api_key:
            return error_response(
                400,
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            )
        fault = config.fault_for(model)
        if fault == "slow_first_byte":
            await asyncio.sleep(config.delay_s)
        if fault in _MESSAGES:
            status, message = _MESSAGES[fault]
            details = None
            if status == 429:
                details = [
                    {
                        "@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{config.retry_after}s",
                    }
                ]
            return error_response(status, message, details)
        contents = body.get("contents")
        if not contents:
            return error_response(
                400, "* GenerateContentRequest.contents: contents is not specified"
            )
        for i, content in enumerate(contents):
            if content.get("role") not in ("user", "model"):
                return error_response(400, f"Please use a valid role: user, model. (contents[{i}])")
            for j, part in enumerate(content.get("parts") or []):
                inline = part.get("inlineData") or part.get("inline_data")
                if inline is not None and not (inline.get("mimeType") or inline.get("mime_type")):
                    return error_response(
                        400, f"contents[{i}].parts[{j}].inline_data.mime_type is required"
                    )
                known = {
                    "text",
                    "inlineData",
                    "inline_data",
                    "functionCall",
                    "functionResponse",
                    "fileData",
                }
                if not set(part) & known:
                    return error_response(400, f"contents[{i}].parts[{j}]: unknown part")
        gen = body.get("generationConfig") or {}
        users = [c for c in contents if c["role"] == "user"]
        prompt_text = " ".join(p.get("text", "") for p in users[-1]["parts"]) if users else ""
        images = sum(
            1 for c in contents for p in c["parts"] if "inlineData" in p or "inline_data" in p
        )
        if images:
            prompt_text = f"{prompt_text} [{images} image(s)]"
        system_text = " ".join(
            p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", [])
        )
        prompt_tokens = (
            count_words(system_text)
            + sum(count_words(p.get("text", "")) for c in contents for p in c["parts"])
            + 258 * images
        )
        n = int(gen.get("candidateCount") or 1)
        limit = gen.get("maxOutputTokens")
        candidates = []
        last_parts = contents[-1]["parts"]
        answered_tool = any("functionResponse" in p for p in last_parts)
        declarations = [
            d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []
        ]
        mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get(
            "mode", "AUTO"
        )
        for _ in range(n):
            pieces, _hit = apply_stop(config.pieces(prompt_text), gen.get("stopSequences") or [])
            reason = "STOP"
            if limit is not None and len(pieces) > limit:
                pieces, reason = pieces[:limit], "MAX_TOKENS"
            call = None
            if declarations and mode != "NONE" and not answered_tool:
                call = {"name": declarations[0]["name"], "args": config.tool_arguments}
                pieces = []
            candidates.append((pieces, reason, call))
        out_tokens = sum(len(p) + (6 if c else 0) for p, _, c in candidates)
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": prompt_tokens + out_tokens,
        }

        prompt_usage = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}

        def candidate(
            index: int, parts: list[dict[str, Any]], reason: str | None
        ) -> dict[str, Any]:
            out: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index}
            if reason:
                out["finishReason"] = reason
            return out

        if method == "generateContent":
            return JSONResponse(
                {
                    "candidates": [
                        candidate(i, [{"functionCall": c}] if c else [{"text": "".join(p)}], r)
                        for i, (p, r, c) in enumerate(candidates)
                    ],
                    "usageMetadata": usage,
                    "modelVersion": model,
                    "responseId": "standin",
                }
            )
        if request.query_params.get("alt") != "sse" or fault == "not_sse":
            return JSONResponse(
                [
                    {
                        "candidates": [candidate(0, [{"text": "".join(candidates[0][0])}], "STOP")],
                        "usageMetadata": usage,
                    }
                ]
            )

        async def events() -> AsyncIterator[bytes]:
            if fault == "slow_first_token":
                yield b": waiting\r\n\r\n"
                await asyncio.sleep(config.delay_s)
            sent = 0
            for i, (pieces, reason, call) in enumerate(candidates):
                for k, piece in enumerate(pieces):
                    if sent == config.fault_after and fault in (
                        "hang",
                        "malformed",
                        "drop",
                        "no_done",
                        "error_event",
                    ):
                        if fault == "hang":
                            await asyncio.sleep(config.hang_s)
                        elif fault == "malformed":
                            yield b'data: {"candidates": [{"content": {"par\r\n\r\n'
                        elif fault == "error_event":
                            yield _sse(
                                {
                                    "error": {
                                        "code": 503,
                                        "message": "The model is overloaded.",
                                        "status": "UNAVAILABLE",
                                    }
                                }
                            )
                        return
                    if config.token_interval_s:
                        await asyncio.sleep(config.token_interval_s)
                    if fault == "keepalive":
                        yield b": keep-alive\r\n\r\n"
                    final = k == len(pieces) - 1 and call is None
                    obj: dict[str, Any] = {
                        "candidates": [candidate(i, [{"text": piece}], reason if final else None)],
                        "modelVersion": model,
                        "responseId": "standin",
                    }
                    # Like the hosted API, every chunk reports the usage so far.
                    obj["usageMetadata"] = usage if final else prompt_usage
                    yield _sse(obj)
                    sent += 1
                if call is not None or not pieces:
                    parts = [{"functionCall": call}] if call else [{"text": ""}]
                    yield _sse(
                        {
                            "candidates": [candidate(i, parts, reason)],
                            "usageMetadata": usage,
                            "modelVersion": model,
                            "responseId": "standin",
                        }
                    )

        return StreamedBody(
            events(),
            media_type="text/event-stream",
            on_disconnect=config.mark_disconnect,
            drop=fault == "drop",
        )

    async def model_info(request: Request) -> Response:
        name = request.path_params["target"]
        return JSONResponse(
            {"name": f"models/{name}", "displayName": name, "inputTokenLimit": 1048576}
        )

    # The API serves the same resources under both versions; the official SDK defaults to v1.
    return Starlette(
        routes=[
            route
            for version in ("v1beta", "v1")
            for route in (
                Route(f"/{version}/models/{{target}}", generate, methods=["POST"]),
                Route(f"/{version}/models/{{target}}", model_info, methods=["GET"]),
            )
        ]
    )
