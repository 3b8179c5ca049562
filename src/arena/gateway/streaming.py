"""Turning provider deltas into OpenAI wire bytes: SSE chunks, and folded non-streaming bodies.

Streaming is the one code path: a non-streaming answer is the same deltas folded by
``ChatFold``/``CompletionFold``. Chunks are built as plain dicts and serialized with orjson;
the constant part of every chunk (id, object, created, model) is encoded once per response,
because re-validating Pydantic models per token costs more than the rest of the hop.
"""

from __future__ import annotations

from typing import Any

import orjson

from arena.errors import ArenaError, UpstreamError
from arena.providers.base import Delta, TokenUsage

DONE = b"data: [DONE]\n\n"


def sse_event(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def sse_error(error: ArenaError) -> bytes:
    """The final event of a stream that failed after it began (OpenAI's error body shape)."""
    return sse_event(error.to_body())


def parse_chunk(data: str) -> dict[str, Any]:
    """One raw chunk's JSON; a malformed one is the backend's failure (502)."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"the backend sent a malformed chunk: {data[:200]!r}") from None
    if not isinstance(obj, dict):
        raise UpstreamError(f"the backend sent an unexpected chunk: {data[:200]!r}")
    return obj


class RawChunkRelay:
    """Passes a backend's own chunk JSON through, as fast as possible.

    For OpenAI-compatible backends the chunks already have the right shape: each is parsed
    once with orjson (malformed data fails the stream instead of reaching the client), its
    usage is noted (always requested upstream, for token limits and metrics), the
    usage-only chunk is dropped when the client did not ask for it, and the backend's
    model name is replaced by the public one. Otherwise the original text goes out as is.
    """

    __slots__ = ("_include_usage", "_public", "_upstream", "chunks", "usage")

    def __init__(self, *, upstream_model: str, public_model: str, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._upstream = upstream_model
        self._public = public_model
        self.usage: TokenUsage | None = None
        self.chunks = 0

    def relay(self, data: str) -> bytes:
        """SSE bytes for one raw chunk (empty when it is dropped)."""
        obj = parse_chunk(data)
        usage = obj.get("usage")
        if usage:
            self.usage = TokenUsage(
                prompt_tokens=usage.get("prompt_tokens") or 0,
                completion_tokens=usage.get("completion_tokens") or 0,
            )
            if not self._include_usage and not obj.get("choices"):
                return b""
        else:
            self.chunks += 1
        if obj.get("model") != self._public:
            obj["model"] = self._public
            return b"data: " + orjson.dumps(obj) + b"\n\n"
        return b"data: " + data.encode() + b"\n\n"

    def relay_batch(self, batch: list[str]) -> tuple[bytes, ArenaError | None]:
        """SSE bytes for a batch of raw chunks, and the error that cut it short, if any:
        the chunks before a bad one still go out."""
        frames = []
        for data in batch:
            try:
                frames.append(self.relay(data))
            except ArenaError as error:
                return b"".join(frames), error
        return b"".join(frames), None


def usage_dict(usage: TokenUsage | None) -> dict[str, int] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


class ChunkEncoder:
    """Encodes the chunks of one streamed response (chat or text completion)."""

    def __init__(self, *, response_id: str, created: int, model: str, chat: bool) -> None:
        self.chat = chat
        head = {
            "id": response_id,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": model,
        }
        # '{"id":...,"model":"m"' + ',"choices":[' ... ']}' — the head is serialized once.
        self._prefix = b"data: " + orjson.dumps(head)[:-1] + b',"choices":['
        self._started: set[int] = set()

    def _frame(self, choices: bytes, usage: dict[str, int] | None = None) -> bytes:
        if usage is None:
            return self._prefix + choices + b"]}\n\n"
        return self._prefix + choices + b'],"usage":' + orjson.dumps(usage) + b"}\n\n"

    def delta(self, delta: Delta) -> bytes:
        """The chunk(s) for one provider delta; empty bytes when it carries nothing to send."""
        out = b""
        index = delta.index
        if self.chat and index not in self._started:
            # OpenAI opens every choice with a role-only chunk.
            self._started.add(index)
            out = self._frame(
                orjson.dumps(
                    {
                        "index": index,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                )
            )
        if not (delta.text or delta.tool_calls or delta.finish_reason or delta.logprobs):
            return out
        if self.chat:
            body: dict[str, Any] = {}
            if delta.text:
                body["content"] = delta.text
            if delta.tool_calls:
                body["tool_calls"] = delta.tool_calls
            choice = {
                "index": index,
                "delta": body,
                "logprobs": delta.logprobs,
                "finish_reason": delta.finish_reason,
            }
        else:
            choice = {
                "index": index,
                "text": delta.text,
                "logprobs": delta.logprobs,
                "finish_reason": delta.finish_reason,
            }
        return out + self._frame(orjson.dumps(choice))

    def usage(self, usage: TokenUsage) -> bytes:
        """The extra last chunk asked for with ``stream_options.include_usage``."""
        return self._frame(b"", usage_dict(usage))


class _Choice:
    __slots__ = ("finish_reason", "logprobs", "parts", "tool_calls")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.logprobs: dict[str, list[Any]] | None = None


class DeltaFold:
    """Accumulates deltas into per-choice text, finish reasons, tool calls, logprobs, usage."""

    def __init__(self) -> None:
        self.choices: dict[int, _Choice] = {}
        self.usage: TokenUsage | None = None
        self.text_deltas = 0

    def add(self, delta: Delta) -> None:
        if delta.usage is not None:
            self.usage = delta.usage
        self._add(delta.index, delta.text, delta.finish_reason, delta.tool_calls, delta.logprobs)

    def _add(
        self,
        index: int,
        text: str,
        finish_reason: str | None,
        tool_calls: list[dict[str, Any]] | None,
        logprobs: dict[str, Any] | None,
    ) -> None:
        choice = self.choices.get(index)
        if choice is None:
            choice = self.choices[index] = _Choice()
        if text:
            choice.parts.append(text)
            self.text_deltas += 1
        if finish_reason:
            choice.finish_reason = finish_reason
        if tool_calls:
            for call in tool_calls:
                _merge_tool_call(choice.tool_calls, call)
        if logprobs:
            merged = choice.logprobs if choice.logprobs is not None else {}
            for key, value in logprobs.items():
                if isinstance(value, list):
                    merged.setdefault(key, []).extend(value)
            choice.logprobs = merged

    def add_chunk(self, chunk: Any, *, chat: bool) -> None:
        """Fold one raw OpenAI chunk (parsed JSON) from a passthrough backend."""
        if not isinstance(chunk, dict):
            return
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = TokenUsage(
                prompt_tokens=usage.get("prompt_tokens") or 0,
                completion_tokens=usage.get("completion_tokens") or 0,
            )
        for choice in chunk.get("choices") or ():
            if chat:
                delta = choice.get("delta") or {}
                text, tool_calls = delta.get("content") or "", delta.get("tool_calls")
            else:
                text, tool_calls = choice.get("text") or "", None
            self._add(
                choice.get("index", 0),
                text,
                choice.get("finish_reason"),
                tool_calls,
                choice.get("logprobs"),
            )

    def chat_body(self, *, response_id: str, created: int, model: str) -> dict[str, Any]:
        choices = []
        for index in sorted(self.choices) or [0]:
            c = self.choices.get(index) or _Choice()
            message: dict[str, Any] = {"role": "assistant", "content": "".join(c.parts)}
            if c.tool_calls:
                message["tool_calls"] = [c.tool_calls[k] for k in sorted(c.tool_calls)]
                if not c.parts:
                    message["content"] = None
            choices.append(
                {
                    "index": index,
                    "message": message,
                    "logprobs": c.logprobs,
                    "finish_reason": c.finish_reason or "stop",
                }
            )
        return {
            "id": response_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": choices,
            "usage": usage_dict(self.usage or TokenUsage()),
        }

    def completion_body(self, *, response_id: str, created: int, model: str) -> dict[str, Any]:
        choices = []
        for index in sorted(self.choices) or [0]:
            c = self.choices.get(index) or _Choice()
            choices.append(
                {
                    "index": index,
                    "text": "".join(c.parts),
                    "logprobs": c.logprobs,
                    "finish_reason": c.finish_reason or "stop",
                }
            )
        return {
            "id": response_id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": choices,
            "usage": usage_dict(self.usage or TokenUsage()),
        }


def _merge_tool_call(calls: dict[int, dict[str, Any]], part: dict[str, Any]) -> None:
    """Tool calls stream as fragments keyed by ``index``; arguments arrive in pieces."""
    index = int(part.get("index", len(calls)))
    current = calls.get(index)
    if current is None:
        current = calls[index] = {
            "id": part.get("id"),
            "type": part.get("type") or "function",
            "function": {"name": None, "arguments": ""},
        }
    if part.get("id"):
        current["id"] = part["id"]
    function = part.get("function") or {}
    if function.get("name"):
        current["function"]["name"] = function["name"]
    if function.get("arguments"):
        current["function"]["arguments"] += function["arguments"]
