"""The one interface every backend implements: stream chat deltas, optionally complete/embed.

Streaming is the primitive. Non-streaming answers are the gateway folding the same deltas,
so a backend is written once and both paths behave identically.

Errors are raised while iterating, never by the call that starts a stream: ``stream_chat``
and ``stream_completion`` return an async iterator at once, and everything — a refused
request (``NotSupported``, a bad image), an upstream failure, a timeout — surfaces on the
first (or a later) ``__anext__``. Callers therefore handle errors in one place.

Backends raise ``arena.errors`` types — ``UpstreamError`` (bad status, broken stream,
malformed SSE), ``UpstreamTimeout`` (connect, first token or idle timeout), ``BadRequest``/
``ContextLengthExceeded`` (the upstream refused the input), ``NotSupported``. They never
let a raw ``aiohttp`` or other library exception escape.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from arena.errors import NotSupported
from arena.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest


@dataclass(frozen=True, slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Delta:
    """One piece of a streamed answer.

    ``index`` is the choice index (``n`` > 1). ``tool_calls`` and ``logprobs`` are passed
    through in OpenAI's chunk shape when the backend produces them. A delta carrying
    ``usage`` usually comes last and may have no text.
    """

    text: str = ""
    index: int = 0
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    tool_calls: list[dict[str, Any]] | None = None
    logprobs: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    vectors: list[list[float]]
    prompt_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What the gateway and arena need to know about a backend without calling it."""

    kind: str
    upstream_model: str
    capabilities: frozenset[str] = field(default_factory=lambda: frozenset({"text"}))
    supports_completions: bool = False
    supports_embeddings: bool = False


class Provider(ABC):
    """A model backend. Instances are cheap to call concurrently and own their HTTP clients."""

    info: ProviderInfo

    @abstractmethod
    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        """Yield deltas for a chat request. ``request.model`` is the public name; the
        provider addresses its own upstream model."""

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        raise NotSupported(f"{self.info.kind} backend does not support text completions")
        yield Delta()  # pragma: no cover (makes this an async generator: raise on iteration)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        raise NotSupported(f"{self.info.kind} backend does not support embeddings")

    async def health(self) -> bool:
        """Cheap liveness probe; False puts the model in outage for the arena sampler."""
        return True

    async def aclose(self) -> None:  # noqa: B027 (optional hook, default does nothing)
        """Release clients and background resources."""
