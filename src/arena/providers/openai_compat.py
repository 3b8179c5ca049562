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
  no translation: they yield lists of upstream events' ``data`` texts verbatim (JSON chunk
  strings, ``[DONE]`` excluded; one list per network read, never empty), with the same
  timeouts, error mapping, error-event and end-of-stream checks, but without parsing
  ordinary chunks. The chunks carry the
  upstream's ``model`` name and ``id``; the request's own ``stream_options`` are kept, so
  a usage chunk appears only if the client asked for one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from arena.errors import ArenaError, UpstreamError
from arena.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from arena.providers.base import Delta, EmbeddingResult, ProviderInfo, TokenUsage
from arena.providers.hosted import HostedProvider
from arena.providers.upstream_errors import error_for_status
from arena.providers.upstream_http import (
    Deadline,
    Timeouts,
    UpstreamClient,
    UpstreamRequest,
    finish_body,
    iter_event_batches,
    loads_event,
    open_response,
    read_json,
)

_DONE = "[DONE]"


class OpenAICompatProvider(HostedProvider):
    """One upstream OpenAI-compatible endpoint, over a pooled ``UpstreamClient``."""

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
        client: UpstreamClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        super().__init__(
            info=ProviderInfo(
                kind=kind,
                upstream_model=upstream_model,
                capabilities=capabilities,
                supports_completions=supports_completions,
                supports_embeddings=supports_embeddings,
            ),
            label=f"{kind} upstream {upstream_model!r}",
            api_key_env=api_key_env,
            api_key=api_key,
            timeouts=timeouts,
            params=params,
            client=client,
        )

    # ------------------------------------------------------------------ request building

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

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ArenaError:
        message, doc = self._error_message(raw)
        err = doc.get("error") if isinstance(doc.get("error"), dict) else doc
        code = str(err.get("code") or "") if isinstance(err, dict) else ""
        context = True if code == "context_length_exceeded" else None
        return error_for_status(
            status, message, label=self._label, headers=headers, context_length=context
        )

    def _stream_error(self, obj: dict[str, Any]) -> UpstreamError:
        err = obj.get("error")
        message = err.get("message") if isinstance(err, dict) else err
        return UpstreamError(f"{self._label} reported an error mid-stream: {self._clean(message)}")

    # ------------------------------------------------------------------ streaming core

    async def _raw_batches(
        self, path: str, api_request: Any, *, force_usage: bool
    ) -> AsyncIterator[list[str]]:
        body = self._body(api_request, force_usage=force_usage)  # in the generator, see base
        request = UpstreamRequest("POST", f"{self.base_url}{path}", self._headers(), json=body)
        deadline = Deadline(self.timeouts)
        async with open_response(
            self._client, request, deadline, label=self._label, on_error=self._error
        ) as response:
            done = False
            batches = iter_event_batches(response, deadline, label=self._label)
            async with aclosing(batches):
                async for events in batches:
                    chunks = []
                    for event in events:
                        data = event.data
                        if data == _DONE:
                            done = True
                            break
                        if not data:
                            continue
                        if event.event == "error" or data.startswith('{"error"'):
                            obj = loads_event(data, label=self._label)
                            if isinstance(obj, dict) and "error" in obj:
                                if chunks:
                                    yield chunks  # what came before the error still counts
                                raise self._stream_error(obj)
                        chunks.append(data)
                    if chunks:
                        yield chunks
                    if done:
                        await finish_body(batches)
                        break
            if not done:
                raise UpstreamError(f"{self._label}: the stream ended without [DONE]")

    async def _deltas(self, path: str, api_request: Any, *, chat: bool) -> AsyncIterator[Delta]:
        label = self._label
        # aclosing: an early exit closes the upstream response now, not when collected.
        async with aclosing(self._raw_batches(path, api_request, force_usage=True)) as batches:
            async for chunks in batches:
                for data in chunks:
                    chunk = loads_event(data, label=label)
                    if not isinstance(chunk, dict):
                        shown = self._clean(data, limit=80)
                        raise UpstreamError(f"{label}: unexpected event {shown!r}")
                    if "error" in chunk:
                        raise self._stream_error(chunk)
                    for choice in chunk.get("choices") or ():
                        delta = self._choice_delta(choice, chat=chat)
                        if delta is not None:
                            yield delta
                    usage = chunk.get("usage")
                    if usage:
                        yield Delta(
                            usage=TokenUsage(
                                prompt_tokens=usage.get("prompt_tokens") or 0,
                                completion_tokens=usage.get("completion_tokens") or 0,
                            )
                        )

    @staticmethod
    def _choice_delta(choice: dict[str, Any], *, chat: bool) -> Delta | None:
        finish = choice.get("finish_reason")
        logprobs = choice.get("logprobs")
        if chat:
            delta = choice.get("delta") or {}
            text = delta.get("content") or ""
            tool_calls = delta.get("tool_calls")
        else:
            text = choice.get("text") or ""
            tool_calls = None
        if not (text or finish or tool_calls or logprobs):
            return None
        return Delta(
            text=text,
            index=choice.get("index", 0),
            finish_reason=finish,
            tool_calls=tool_calls,
            logprobs=logprobs,
        )

    # ------------------------------------------------------------------ Provider API

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        return self._deltas("/chat/completions", request, chat=True)

    def stream_chat_raw(self, request: ChatCompletionRequest) -> AsyncIterator[list[str]]:
        """Fast path: the upstream's chunk JSON strings, verbatim (see module docstring)."""
        return self._raw_batches("/chat/completions", request, force_usage=False)

    def stream_completion(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        return self._deltas("/completions", request, chat=False)

    def stream_completion_raw(self, request: CompletionRequest) -> AsyncIterator[list[str]]:
        return self._raw_batches("/completions", request, force_usage=False)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        body = request.model_dump(exclude_none=True)
        body["model"] = self.upstream_model
        body["encoding_format"] = "float"
        request_ = UpstreamRequest(
            "POST", f"{self.base_url}/embeddings", self._headers(), json=body
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
        return await self._probe(f"{self.base_url}/models", self._headers())

    async def list_models(self) -> list[str]:
        """Model ids the upstream serves (``GET /models``)."""
        request = UpstreamRequest("GET", f"{self.base_url}/models", self._headers())
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
