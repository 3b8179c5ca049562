"""Adapter for the Google Gemini API (``models/{model}:streamGenerateContent?alt=sse``).

Translation, OpenAI chat -> Gemini:

* ``system``/``developer`` messages -> ``systemInstruction``; user -> role ``user``,
  assistant -> role ``model``; consecutive turns of one role are merged;
* image parts: ``data:`` URLs -> ``inlineData {mimeType, data}``; ``http(s)`` URLs are
  refused with a clear 400 (the API reads only inline data or its own uploaded files);
* assistant ``tool_calls`` -> ``functionCall`` parts, ``tool`` messages ->
  ``functionResponse`` parts (the function name is looked up from the call id);
  ``tools`` -> ``functionDeclarations``, ``tool_choice`` -> ``toolConfig``;
* ``generationConfig``: temperature, topP, maxOutputTokens, stopSequences,
  candidateCount (``n``), seed, presence/frequency penalties, and ``response_format``
  json_object/json_schema -> ``responseMimeType``/``responseJsonSchema``.

Back: each SSE ``data:`` event is a GenerateContentResponse; candidate text parts become
deltas (``thought`` parts are skipped), ``functionCall`` parts become tool-call deltas,
``finishReason`` maps STOP -> stop (tool_calls when the candidate called a function),
MAX_TOKENS -> length, SAFETY/RECITATION/BLOCKLIST/PROHIBITED_CONTENT/SPII -> content_filter;
a prompt blocked by ``promptFeedback.blockReason`` ends with content_filter. The stream has
no end marker, so a stream that ends before every candidate has a finish reason is an
``UpstreamError``. Error bodies ``{"error": {"code", "message", "status"}}`` map to typed
errors; an invalid API key (400 API_KEY_INVALID) is our credential problem, not the client's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from multidict import CIMultiDict

from arena.errors import ArenaError, BadRequest, NotSupported, UpstreamError
from arena.protocol import ChatCompletionRequest, ChatMessage, ImagePart, TextPart
from arena.providers.base import Delta, ProviderInfo, TokenUsage
from arena.providers.data_urls import is_data_url, parse_data_url
from arena.providers.hosted import HostedProvider, merge_turn
from arena.providers.upstream_errors import error_for_status
from arena.providers.upstream_http import (
    Deadline,
    Timeouts,
    UpstreamClient,
    UpstreamRequest,
    base_url_with_version,
    iter_events,
    loads_event,
    open_response,
)

FILTERED = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
_CREDENTIAL_REASONS = {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "SERVICE_DISABLED"}


def finish_reason(reason: str, *, called_tool: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if called_tool else "stop"


def _parts(message: ChatMessage) -> list[dict[str, Any]]:
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [{"text": message.content}] if message.content else []
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            url = part.image_url.url
            if not is_data_url(url):
                raise BadRequest(
                    "Gemini models take images only as data: URLs (base64); "
                    "http(s) image URLs are not supported for this model",
                    param="messages",
                )
            media_type, data = parse_data_url(url)
            parts.append({"inlineData": {"mimeType": media_type, "data": data}})
    return parts


def translate_messages(
    messages: list[ChatMessage],
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """OpenAI messages -> (systemInstruction, contents)."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        merge_turn(contents, role, "parts", parts)

    for message in messages:
        if message.role in ("system", "developer"):
            system.append(message.text())
        elif message.role == "user":
            add("user", _parts(message))
        elif message.role == "assistant":
            parts = _parts(message)
            for call in message.tool_calls or []:
                try:
                    args = json.loads(call.function.arguments or "{}")
                except ValueError:
                    raise BadRequest(
                        "tool call arguments must be a JSON object", param="messages"
                    ) from None
                if call.id and call.function.name:
                    call_names[call.id] = call.function.name
                parts.append({"functionCall": {"name": call.function.name or "", "args": args}})
            add("model", parts)
        elif message.role in ("tool", "function"):
            name = message.name or call_names.get(message.tool_call_id or "")
            if not name:
                raise BadRequest(
                    "a tool message must follow the assistant tool call it answers",
                    param="messages",
                )
            try:
                result = json.loads(message.text())
            except ValueError:
                result = None
            response = result if isinstance(result, dict) else {"content": message.text()}
            add("user", [{"functionResponse": {"name": name, "response": response}}])
    if not contents:
        raise BadRequest("Gemini needs at least one user or assistant message", param="messages")
    text = "\n\n".join(s for s in system if s)
    return ({"parts": [{"text": text}]} if text else None), contents


def _tools(
    request: ChatCompletionRequest,
) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    tools = None
    if request.tools:
        declarations = []
        for tool in request.tools:
            fn = tool.get("function") if tool.get("type", "function") == "function" else None
            if not fn or not fn.get("name"):
                raise BadRequest("each tool needs type 'function' and function.name", param="tools")
            decl = {"name": fn["name"]}
            if fn.get("description"):
                decl["description"] = fn["description"]
            if fn.get("parameters"):
                decl["parametersJsonSchema"] = fn["parameters"]
            declarations.append(decl)
        tools = [{"functionDeclarations": declarations}]
    choice = request.tool_choice
    if choice is None:
        return tools, None
    if choice in ("auto", "none", "required"):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]
        return tools, {"functionCallingConfig": {"mode": mode}}
    if isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
        return tools, {"functionCallingConfig": config}
    raise BadRequest(f"unsupported tool_choice {choice!r}", param="tool_choice")


def _retry_delay(doc: dict[str, Any]) -> float | None:
    for detail in (doc.get("error") or {}).get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and re.fullmatch(r"\d+(\.\d+)?s", delay):
            return float(delay[:-1])
    return None


class GeminiProvider(HostedProvider):
    key_header = "x-goog-api-key"
    key_prefix = ""

    def __init__(
        self,
        *,
        base_url: str = "https://generativelanguage.googleapis.com",
        upstream_model: str,
        api_key_env: str | None = None,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        params: dict[str, Any] | None = None,
        capabilities: frozenset[str] = frozenset({"text", "vision"}),
        client: UpstreamClient | None = None,
    ) -> None:
        self.base_url = base_url_with_version(base_url, "v1beta")
        model = upstream_model.removeprefix("models/")
        super().__init__(
            info=ProviderInfo(kind="gemini", upstream_model=model, capabilities=capabilities),
            label=f"gemini upstream {model!r}",
            api_key_env=api_key_env,
            api_key=api_key,
            timeouts=timeouts,
            params=params,
            client=client,
        )

    def build_body(self, request: ChatCompletionRequest) -> dict[str, Any]:
        if request.logprobs:
            raise NotSupported("logprobs are not supported for Gemini models", param="logprobs")
        system, contents = translate_messages(request.messages)
        params = self.params
        config: dict[str, Any] = {}

        def put(key: str, value: Any, default_key: str | None = None) -> None:
            if value is None and default_key:
                value = params.get(default_key)
            if value is not None:
                config[key] = value

        put("temperature", request.temperature, "temperature")
        put("topP", request.top_p, "top_p")
        put("topK", (request.model_extra or {}).get("top_k"), "top_k")
        put("maxOutputTokens", request.token_limit(), "max_tokens")
        put("stopSequences", request.stop_list() or None)
        put("candidateCount", request.n if (request.n or 1) > 1 else None)
        put("seed", request.seed, "seed")
        put("presencePenalty", request.presence_penalty)
        put("frequencyPenalty", request.frequency_penalty)
        fmt = request.response_format or {}
        if fmt.get("type") == "json_object":
            config["responseMimeType"] = "application/json"
        elif fmt.get("type") == "json_schema":
            config["responseMimeType"] = "application/json"
            schema = (fmt.get("json_schema") or {}).get("schema")
            if schema:
                config["responseJsonSchema"] = schema
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = system
        if config:
            body["generationConfig"] = config
        tools, tool_config = _tools(request)
        if tools:
            body["tools"] = tools
        if tool_config:
            body["toolConfig"] = tool_config
        return body

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ArenaError:
        message, doc = self._error_message(raw)
        err = doc.get("error") if isinstance(doc.get("error"), dict) else {}
        reasons = {d.get("reason") for d in err.get("details") or [] if isinstance(d, dict)}
        credential = bool(reasons & _CREDENTIAL_REASONS) or err.get("status") in (
            "UNAUTHENTICATED",
            "PERMISSION_DENIED",
            "FAILED_PRECONDITION",
        )
        if status == 429 and "retry-after" not in headers:
            delay = _retry_delay(doc)
            if delay is not None:
                headers = CIMultiDict(headers)
                headers["retry-after"] = str(delay)
        return error_for_status(
            status, message, label=self._label, headers=headers, credential_problem=credential
        )

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        return self._stream(request)

    async def _stream(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        body = self.build_body(request)  # in the generator: refusals raise on iteration
        label = self._label
        url = f"{self.base_url}/models/{self.upstream_model}:streamGenerateContent?alt=sse"
        http_request = UpstreamRequest("POST", url, self._headers(), json=body)
        deadline = Deadline(self.timeouts)
        expected = int((body.get("generationConfig") or {}).get("candidateCount") or 1)
        finished: set[int] = set()
        tool_calls: dict[int, int] = {}  # candidate index -> calls so far
        usage: dict[str, Any] = {}
        async with (
            open_response(
                self._client, http_request, deadline, label=label, on_error=self._error
            ) as response,
            aclosing(iter_events(response, deadline, label=label)) as events,
        ):
            async for event in events:
                if not event.data:
                    continue
                chunk = loads_event(event.data, label=label)
                if not isinstance(chunk, dict):
                    shown = self._clean(event.data, limit=80)
                    raise UpstreamError(f"{label}: unexpected event {shown!r}")
                if "error" in chunk:
                    err = chunk["error"] if isinstance(chunk["error"], dict) else {}
                    message = self._clean(err.get("message", ""))
                    raise UpstreamError(f"{label} reported an error mid-stream: {message}")
                usage = chunk.get("usageMetadata") or usage
                blocked = (chunk.get("promptFeedback") or {}).get("blockReason")
                if blocked and not chunk.get("candidates"):
                    for index in range(expected):
                        if index not in finished:
                            finished.add(index)
                            yield Delta(index=index, finish_reason="content_filter")
                for candidate in chunk.get("candidates") or ():
                    index = candidate.get("index", 0)
                    for part in (candidate.get("content") or {}).get("parts") or ():
                        if part.get("thought"):
                            continue
                        if part.get("text"):
                            yield Delta(text=part["text"], index=index)
                        call = part.get("functionCall")
                        if call:
                            ordinal = tool_calls.get(index, 0)
                            tool_calls[index] = ordinal + 1
                            yield Delta(
                                index=index,
                                tool_calls=[
                                    {
                                        "index": ordinal,
                                        "id": call.get("id") or "call_" + uuid.uuid4().hex[:24],
                                        "type": "function",
                                        "function": {
                                            "name": call.get("name"),
                                            "arguments": json.dumps(call.get("args") or {}),
                                        },
                                    }
                                ],
                            )
                    reason = candidate.get("finishReason")
                    if reason and index not in finished:
                        finished.add(index)
                        yield Delta(
                            index=index,
                            finish_reason=finish_reason(reason, called_tool=index in tool_calls),
                        )
        if len(finished) < expected:
            raise UpstreamError(f"{label}: the stream ended before a finish reason")
        yield Delta(
            usage=TokenUsage(
                prompt_tokens=usage.get("promptTokenCount") or 0,
                completion_tokens=(usage.get("candidatesTokenCount") or 0)
                + (usage.get("thoughtsTokenCount") or 0),
            )
        )

    async def health(self) -> bool:
        return await self._probe(f"{self.base_url}/models/{self.upstream_model}", self._headers())
