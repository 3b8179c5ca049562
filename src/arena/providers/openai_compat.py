"""Adapter for upstreams that speak the OpenAI API: vLLM, SGLang, TGI, llama.cpp, Ollama,
OpenAI itself and any compatible host.

Requests go upstream nearly as they came: every field the client sent — ``tools``,
``response_format``, ``seed``, ``n``, ``logprobs`` and unknown engine-specific extras such
as ``top_k`` — is passed through; only ``model`` (the upstream's name), ``stream`` and
``stream_options.include_usage`` are set, and the model's registry ``params`` fill fields the
client left out. The upstream always streams; non-streaming answers are the gateway folding
the deltas.

Two streaming APIs:

* ``stream_chat`` / ``stream_completion`` yield ``Delta`` objects (parsed, typed).
* ``stream_chat_raw`` / ``stream_completion_raw`` are the gateway's fast path when it needs
  no translation: they yield each upstream event's ``data`` text verbatim (a JSON chunk
  string, ``[DONE]`` excluded), with the same timeouts, error mapping, error-event and
  end-of-stream checks, but without parsing ordinary chunks. The chunks carry the
  upstream's ``model`` name and ``id``; the request's own ``stream_options`` are kept, so
  a usage chunk appears only if the client asked for one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from arena.errors import ArenaError, UpstreamError
from arena.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from arena.providers.base import Delta, EmbeddingResult, Provider, ProviderInfo, TokenUsage
from arena.providers.upstream_http import (
    Deadline,
    Timeouts,
    error_for_status,
    error_message_from_body,
    finish_body,
    iter_events,
    loads_event,
    make_client,
    open_response,
    read_json,
)

_DONE = "[DONE]"


class OpenAICompatProvider(Provider):
    """One upstream OpenAI-compatible endpoint, one pooled ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        base_url: str,
        upstream_model: str,
        kind: str = "openai_compatible",
        api_key_env: str | None = None,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        params: dict[str, Any] | None = None,
        capabilities: frozenset[str] = frozenset({"text"}),
        supports_completions: bool = True,
        supports_embeddings: bool = True,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.upstream_model = upstream_model
        self.timeouts = timeouts or Timeouts()
        self.params = dict(params or {})
        self._api_key_env = api_key_env
        self._api_key = api_key
        self._client = client or make_client(self.timeouts)
        self._label = f"{kind} upstream {upstream_model!r}"
        self.info = ProviderInfo(
            kind=kind,
            upstream_model=upstream_model,
            capabilities=capabilities,
            supports_completions=supports_completions,
            supports_embeddings=supports_embeddings,
        )

    # ------------------------------------------------------------------ request building

    def _headers(self) -> dict[str, str]:
        import os

        key = self._api_key or (os.environ.get(self._api_key_env) if self._api_key_env else None)
        headers = {"accept": "text/event-stream"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _body(self, request: Any, *, force_usage: bool) -> dict[str, Any]:
        body = request.model_dump(exclude_none=True)
        for key, value in self.params.items():
            body.setdefault(key, value)
        body["model"] = self.upstream_model
        body["stream"] = True
        if force_usage:
            options = dict(body.get("stream_options") or {})
            options["include_usage"] = True
            body["stream_options"] = options
        return body

    def _error(self, status: int, raw: bytes, headers: httpx.Headers) -> ArenaError:
        message, doc = error_message_from_body(raw)
        err = doc.get("error") if isinstance(doc.get("error"), dict) else doc
        code = str(err.get("code") or "") if isinstance(err, dict) else ""
        context = True if code == "context_length_exceeded" else None
        return error_for_status(
            status, message, label=self._label, headers=headers, context_length=context
        )

    def _stream_error(self, obj: dict[str, Any]) -> UpstreamError:
        err = obj.get("error")
        message = err.get("message") if isinstance(err, dict) else str(err)
        return UpstreamError(f"{self._label} reported an error mid-stream: {message}")

    # ------------------------------------------------------------------ streaming core

    async def _raw_events(self, path: str, body: dict[str, Any]) -> AsyncIterator[str]:
        request = self._client.build_request(
            "POST", f"{self.base_url}{path}", json=body, headers=self._headers()
        )
        deadline = Deadline(self.timeouts)
        async with open_response(
            self._client, request, deadline, label=self._label, on_error=self._error
        ) as response:
            done = False
            events = iter_events(response, deadline, label=self._label)
            async for event in events:
                data = event.data
                if data == _DONE:
                    done = True
                    await finish_body(events)
                    break
                if not data:
                    continue
                if event.event == "error" or data.startswith('{"error"'):
                    obj = loads_event(data, label=self._label)
                    if isinstance(obj, dict) and "error" in obj:
                        raise self._stream_error(obj)
                yield data
            if not done:
                raise UpstreamError(f"{self._label}: the stream ended without [DONE]")

    async def _deltas(self, path: str, body: dict[str, Any], *, chat: bool) -> AsyncIterator[Delta]:
        label = self._label
        async for data in self._raw_events(path, body):
            chunk = loads_event(data, label=label)
            if not isinstance(chunk, dict):
                raise UpstreamError(f"{label}: unexpected event {data[:200]!r}")
            if "error" in chunk:
                raise self._stream_error(chunk)
            for choice in chunk.get("choices") or ():
                finish = choice.get("finish_reason")
                logprobs = choice.get("logprobs")
                if chat:
                    delta = choice.get("delta") or {}
                    text = delta.get("content") or ""
                    tool_calls = delta.get("tool_calls")
                else:
                    text = choice.get("text") or ""
                    tool_calls = None
                if text or finish or tool_calls or logprobs:
                    yield Delta(
                        text=text,
                        index=choice.get("index", 0),
                        finish_reason=finish,
                        tool_calls=tool_calls,
                        logprobs=logprobs,
                    )
            usage = chunk.get("usage")
            if usage:
                yield Delta(
                    usage=TokenUsage(
                        prompt_tokens=usage.get("prompt_tokens") or 0,
                        completion_tokens=usage.get("completion_tokens") or 0,
                    )
                )

    # ------------------------------------------------------------------ Provider API

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        return self._deltas("/chat/completions", self._body(request, force_usage=True), chat=True)

    def stream_chat_raw(self, request: ChatCompletionRequest) -> AsyncIterator[str]:
        """Fast path: the upstream's chunk JSON strings, verbatim (see module docstring)."""
        return self._raw_events("/chat/completions", self._body(request, force_usage=False))

    def stream_completion(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        return self._deltas("/completions", self._body(request, force_usage=True), chat=False)

    def stream_completion_raw(self, request: CompletionRequest) -> AsyncIterator[str]:
        return self._raw_events("/completions", self._body(request, force_usage=False))

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        body = request.model_dump(exclude_none=True)
        body["model"] = self.upstream_model
        body["encoding_format"] = "float"
        request_ = self._client.build_request(
            "POST", f"{self.base_url}/embeddings", json=body, headers=self._headers()
        )
        doc = await read_json(
            self._client, request_, self.timeouts, label=self._label, on_error=self._error
        )
        try:
            rows = sorted(doc["data"], key=lambda d: d.get("index", 0))
            vectors = [_vector(row["embedding"]) for row in rows]
            tokens = (doc.get("usage") or {}).get("prompt_tokens") or 0
        except (KeyError, TypeError, ValueError) as e:
            raise UpstreamError(f"{self._label}: unexpected embeddings answer ({e})") from None
        return EmbeddingResult(vectors=vectors, prompt_tokens=tokens)

    async def health(self) -> bool:
        try:
            response = await self._client.get(
                f"{self.base_url}/models",
                headers=self._headers(),
                timeout=min(5.0, self.timeouts.total),
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def list_models(self) -> list[str]:
        """Model ids the upstream serves (``GET /models``)."""
        request = self._client.build_request(
            "GET", f"{self.base_url}/models", headers=self._headers()
        )
        doc = await read_json(
            self._client, request, self.timeouts, label=self._label, on_error=self._error
        )
        return [m["id"] for m in doc.get("data", []) if isinstance(m, dict) and "id" in m]

    async def aclose(self) -> None:
        await self._client.aclose()


def _vector(value: Any) -> list[float]:
    if isinstance(value, str):
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(value), dtype="<f4").astype(float).tolist()
    return [float(x) for x in value]
