"""Adapter for the Anthropic Messages API (``POST /v1/messages``, streamed).

Translation, OpenAI chat -> Messages:

* ``system``/``developer`` messages become the top-level ``system`` text;
* user/assistant turns become ``messages``; consecutive turns of one role are merged;
* image parts: ``data:`` URLs -> ``{"type": "image", "source": {"type": "base64", ...}}``,
  ``http(s)`` URLs -> ``{"source": {"type": "url", "url": ...}}`` (the API fetches them);
* assistant ``tool_calls`` -> ``tool_use`` blocks, ``tool`` messages -> ``tool_result``
  blocks in a user turn; ``tools``/``tool_choice`` are translated to Anthropic's shapes;
* ``stop`` -> ``stop_sequences``, ``max_tokens`` (required there; default 4096 or the
  model's ``params.max_tokens``), ``temperature`` (clamped to Anthropic's 0..1), ``top_p``,
  ``user`` -> ``metadata.user_id``. ``seed`` has no equivalent and is ignored;
  ``n`` > 1, ``logprobs`` and ``response_format`` are refused with ``NotSupported``.

Back, the stream events map to deltas: ``content_block_delta`` text -> text,
``tool_use`` blocks and ``input_json_delta`` -> OpenAI-shaped ``tool_calls`` deltas,
``message_delta.stop_reason`` -> finish reason (end_turn/stop_sequence -> stop,
max_tokens -> length, tool_use -> tool_calls, refusal -> content_filter), usage from
``message_start`` and ``message_delta``; ``ping`` is ignored; an ``error`` event or a
stream without ``message_stop`` is an ``UpstreamError``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, ClassVar

from arena.errors import ArenaError, BadRequest, NotSupported, UpstreamError
from arena.protocol import ChatCompletionRequest, ChatMessage, ImagePart, TextPart
from arena.providers.base import Delta, ProviderInfo, TokenUsage
from arena.providers.data_urls import is_data_url, is_http_url, parse_data_url
from arena.providers.hosted import HostedProvider, merge_turn
from arena.providers.upstream_errors import error_for_status
from arena.providers.upstream_http import (
    Deadline,
    Timeouts,
    UpstreamClient,
    UpstreamRequest,
    base_url_with_version,
    finish_body,
    iter_events,
    loads_event,
    open_response,
)

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Anthropic error types -> the HTTP status they travel with (used for mid-stream errors).
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _content_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            url = part.image_url.url
            if is_data_url(url):
                media_type, data = parse_data_url(url)
                source = {"type": "base64", "media_type": media_type, "data": data}
            elif is_http_url(url):
                source = {"type": "url", "url": url}
            else:
                raise BadRequest(
                    "image_url must be a data: URL or an http(s) URL", param="messages"
                )
            blocks.append({"type": "image", "source": source})
    return blocks


def _tool_use_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    blocks = []
    for call in message.tool_calls or []:
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except ValueError:
            raise BadRequest(
                "tool call arguments must be a JSON object", param="messages"
            ) from None
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id or "",
                "name": call.function.name or "",
                "input": arguments,
            }
        )
    return blocks


def translate_messages(messages: list[ChatMessage]) -> tuple[str | None, list[dict[str, Any]]]:
    """OpenAI messages -> (Anthropic system text, Anthropic messages)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        merge_turn(turns, role, "content", blocks)

    for message in messages:
        if message.role in ("system", "developer"):
            system.append(message.text())
        elif message.role == "user":
            add("user", _content_blocks(message))
        elif message.role == "assistant":
            add("assistant", _content_blocks(message) + _tool_use_blocks(message))
        elif message.role in ("tool", "function"):
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": message.tool_call_id or message.name or "",
                        "content": message.text(),
                    }
                ],
            )
    if not turns:
        raise BadRequest("Anthropic needs at least one user or assistant message", param="messages")
    return ("\n\n".join(s for s in system if s) or None), turns


def translate_tools(request: ChatCompletionRequest) -> tuple[list[dict[str, Any]] | None, Any]:
    tools = None
    if request.tools:
        tools = []
        for tool in request.tools:
            fn = tool.get("function") if tool.get("type", "function") == "function" else None
            if not fn or not fn.get("name"):
                raise BadRequest("each tool needs type 'function' and function.name", param="tools")
            entry = {
                "name": fn["name"],
                "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
            }
            if fn.get("description"):
                entry["description"] = fn["description"]
            tools.append(entry)
    choice = request.tool_choice
    if choice is None:
        mapped = None
    elif choice == "auto":
        mapped = {"type": "auto"}
    elif choice == "required":
        mapped = {"type": "any"}
    elif choice == "none":
        mapped = {"type": "none"}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        mapped = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise BadRequest(f"unsupported tool_choice {choice!r}", param="tool_choice")
    return tools, mapped


class AnthropicProvider(HostedProvider):
    key_header = "x-api-key"
    key_prefix = ""
    fixed_headers: ClassVar[dict[str, str]] = {"anthropic-version": API_VERSION}

    def __init__(
        self,
        *,
        base_url: str = "https://api.anthropic.com",
        upstream_model: str,
        api_key_env: str | None = None,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        params: dict[str, Any] | None = None,
        capabilities: frozenset[str] = frozenset({"text", "vision"}),
        client: UpstreamClient | None = None,
    ) -> None:
        self.base_url = base_url_with_version(base_url, "v1")
        super().__init__(
            info=ProviderInfo(
                kind="anthropic", upstream_model=upstream_model, capabilities=capabilities
            ),
            label=f"anthropic upstream {upstream_model!r}",
            api_key_env=api_key_env,
            api_key=api_key,
            timeouts=timeouts,
            params=params,
            client=client,
        )

    def build_body(self, request: ChatCompletionRequest) -> dict[str, Any]:
        if (request.n or 1) > 1:
            raise NotSupported("Anthropic models return one choice; n must be 1", param="n")
        if request.logprobs:
            raise NotSupported("Anthropic models do not return logprobs", param="logprobs")
        if request.response_format and request.response_format.get("type") not in (None, "text"):
            raise NotSupported(
                "response_format is not supported for Anthropic models", param="response_format"
            )
        system, messages = translate_messages(request.messages)
        params = self.params
        max_tokens = request.token_limit() or params.get("max_tokens") or DEFAULT_MAX_TOKENS
        body: dict[str, Any] = {
            "model": self.upstream_model,
            "messages": messages,
            "max_tokens": max_tokens,
            "stream": True,
        }
        if system:
            body["system"] = system
        temperature = (
            request.temperature if request.temperature is not None else params.get("temperature")
        )
        if temperature is not None:
            body["temperature"] = min(float(temperature), 1.0)
        top_p = request.top_p if request.top_p is not None else params.get("top_p")
        if top_p is not None:
            body["top_p"] = top_p
        top_k = (request.model_extra or {}).get("top_k", params.get("top_k"))
        if top_k is not None:
            body["top_k"] = top_k
        stops = request.stop_list() or params.get("stop_sequences") or []
        if stops:
            body["stop_sequences"] = stops
        tools, tool_choice = translate_tools(request)
        if tools:
            body["tools"] = tools
        if tool_choice:
            body["tool_choice"] = tool_choice
        if request.user:
            body["metadata"] = {"user_id": request.user}
        return body

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ArenaError:
        message, doc = self._error_message(raw)
        err = doc.get("error") if isinstance(doc.get("error"), dict) else {}
        if err.get("type") in ("authentication_error", "permission_error", "billing_error"):
            return error_for_status(status, message, label=self._label, credential_problem=True)
        return error_for_status(status, message, label=self._label, headers=headers)

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        return self._stream(request)

    async def _stream(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        body = self.build_body(request)  # in the generator: refusals raise on iteration
        label = self._label
        http_request = UpstreamRequest(
            "POST", f"{self.base_url}/messages", self._headers(), json=body
        )
        deadline = Deadline(self.timeouts)
        prompt_tokens = completion_tokens = 0
        tool_index: dict[int, int] = {}  # content block index -> tool call ordinal
        finish: str | None = None
        stopped = False
        async with (
            open_response(
                self._client, http_request, deadline, label=label, on_error=self._error
            ) as response,
            aclosing(iter_events(response, deadline, label=label)) as events,
        ):
            async for event in events:
                kind = event.event
                if kind == "ping" or not event.data:
                    continue
                data = loads_event(event.data, label=label)
                if not isinstance(data, dict):
                    shown = self._clean(event.data, limit=80)
                    raise UpstreamError(f"{label}: unexpected event {shown!r}")
                kind = kind or data.get("type")
                if kind == "content_block_delta":
                    delta = data.get("delta") or {}
                    dtype = delta.get("type")
                    if dtype == "text_delta":
                        if delta.get("text"):
                            yield Delta(text=delta["text"])
                    elif dtype == "input_json_delta":
                        ordinal = tool_index.get(data.get("index", -1))
                        if ordinal is not None and delta.get("partial_json"):
                            yield Delta(
                                tool_calls=[
                                    {
                                        "index": ordinal,
                                        "function": {"arguments": delta["partial_json"]},
                                    }
                                ]
                            )
                    # thinking/signature/citations deltas are not part of the chat answer.
                elif kind == "content_block_start":
                    block = data.get("content_block") or {}
                    if block.get("type") == "tool_use":
                        ordinal = len(tool_index)
                        tool_index[data.get("index", ordinal)] = ordinal
                        yield Delta(
                            tool_calls=[
                                {
                                    "index": ordinal,
                                    "id": block.get("id"),
                                    "type": "function",
                                    "function": {"name": block.get("name"), "arguments": ""},
                                }
                            ]
                        )
                    elif block.get("type") == "text" and block.get("text"):
                        yield Delta(text=block["text"])
                elif kind == "message_start":
                    usage = (data.get("message") or {}).get("usage") or {}
                    prompt_tokens = _input_tokens(usage)
                    completion_tokens = usage.get("output_tokens") or 0
                elif kind == "message_delta":
                    usage = data.get("usage") or {}
                    completion_tokens = usage.get("output_tokens") or completion_tokens
                    if usage.get("input_tokens") is not None:
                        prompt_tokens = _input_tokens(usage)
                    reason = (data.get("delta") or {}).get("stop_reason")
                    if reason:
                        finish = FINISH_REASONS.get(reason, "stop")
                        yield Delta(finish_reason=finish)
                elif kind == "message_stop":
                    stopped = True
                    await finish_body(events)
                    break
                elif kind == "error":
                    err = data.get("error") or {}
                    raise UpstreamError(
                        f"{label} reported {self._clean(err.get('type', 'an error'), limit=40)} "
                        f"mid-stream: {self._clean(err.get('message', ''))}"
                    )
        if not stopped:
            raise UpstreamError(f"{label}: the stream ended without message_stop")
        if finish is None:
            yield Delta(finish_reason="stop")
        yield Delta(usage=TokenUsage(prompt_tokens, completion_tokens))

    async def health(self) -> bool:
        return await self._probe(f"{self.base_url}/models", self._headers())


def _input_tokens(usage: dict[str, Any]) -> int:
    return (
        (usage.get("input_tokens") or 0)
        + (usage.get("cache_creation_input_tokens") or 0)
        + (usage.get("cache_read_input_tokens") or 0)
    )
