"""What every provider promises about its streams, checked on each of them alike.

* Starting a stream never raises and never does I/O: a refused request (``NotSupported``,
  a bad image) and an upstream error surface on the first ``__anext__``, so callers handle
  errors in one place.
* A consumer that stops early (``aclose``) releases what the stream held at once — the
  upstream HTTP response, the local model's concurrency slot — not when the garbage
  collector gets to a nested generator.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from arena.errors import ArenaError, BadRequest, NotSupported
from arena.protocol import ChatCompletionRequest, CompletionRequest
from arena.providers.anthropic import AnthropicProvider
from arena.providers.base import Provider
from arena.providers.demo import DemoProvider
from arena.providers.gemini import GeminiProvider
from arena.providers.local import LocalProvider
from arena.providers.openai_compat import OpenAICompatProvider
from arena.providers.upstream_http import UpstreamClient

from .conftest import FAST

REMOTE_IMAGE = {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}}
TEXT_AS_IMAGE = {"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}
TOOLS = [{"type": "function", "function": {"name": "f"}}]


def chat(content: object = "Hello there", **kwargs) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="public", messages=[{"role": "user", "content": content}], **kwargs
    )


def image_chat(image: dict) -> ChatCompletionRequest:
    return chat([{"type": "text", "text": "look"}, image])


def completion(**kwargs) -> CompletionRequest:
    kwargs.setdefault("prompt", "Once upon a time")
    return CompletionRequest(model="public", **kwargs)


# (provider kind, how the stream is started, the error it must raise on first iteration)
REFUSALS: list[tuple[str, Callable[[Provider], object], type[ArenaError]]] = [
    ("demo", lambda p: p.stream_chat(chat(tools=TOOLS)), NotSupported),
    ("demo", lambda p: p.stream_chat(chat(logprobs=True)), NotSupported),
    ("demo", lambda p: p.stream_chat(image_chat(REMOTE_IMAGE)), BadRequest),
    ("demo", lambda p: p.stream_completion(completion(prompt=["a", "b"])), NotSupported),
    ("anthropic", lambda p: p.stream_chat(chat(n=2)), NotSupported),
    ("anthropic", lambda p: p.stream_chat(chat(logprobs=True)), NotSupported),
    ("anthropic", lambda p: p.stream_chat(image_chat(TEXT_AS_IMAGE)), BadRequest),
    ("anthropic", lambda p: p.stream_completion(completion()), NotSupported),
    ("gemini", lambda p: p.stream_chat(image_chat(REMOTE_IMAGE)), BadRequest),
    ("gemini", lambda p: p.stream_chat(chat(logprobs=True)), NotSupported),
    ("gemini", lambda p: p.stream_completion(completion()), NotSupported),
    ("openai", lambda p: p.stream_chat(chat()), BadRequest),
    ("openai", lambda p: p.stream_chat_raw(chat()), BadRequest),
    ("openai", lambda p: p.stream_completion(completion()), BadRequest),
    ("openai", lambda p: p.stream_completion_raw(completion()), BadRequest),
    ("local", lambda p: p.stream_chat(chat(logprobs=True)), NotSupported),
    ("local", lambda p: p.stream_completion(completion(suffix="end")), NotSupported),
]


@pytest.fixture
async def make(openai_upstream, anthropic_upstream, gemini_upstream, tmp_path):
    made: list[Provider] = []

    def build(kind: str, client: UpstreamClient | None = None) -> Provider:
        if kind == "demo":
            provider: Provider = DemoProvider("demo-a", tokens_per_s=0)
        elif kind == "anthropic":
            provider = AnthropicProvider(
                base_url=anthropic_upstream.url, upstream_model="m", timeouts=FAST, client=client
            )
        elif kind == "gemini":
            provider = GeminiProvider(
                base_url=gemini_upstream.url, upstream_model="m", timeouts=FAST, client=client
            )
        elif kind == "openai":
            provider = OpenAICompatProvider(
                base_url=openai_upstream.url + "/v1",
                upstream_model="fault-400",
                timeouts=FAST,
                client=client,
            )
        else:
            provider = LocalProvider(str(tmp_path / "no-model-here"), device="cpu")
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


@pytest.mark.parametrize(("kind", "start", "error"), REFUSALS)
async def test_errors_come_on_first_iteration_not_from_the_call(make, kind, start, error):
    # The client's counters: requests sent, and responses not yet released.
    client = UpstreamClient() if kind in ("anthropic", "gemini", "openai") else None
    provider = make(kind, client)
    stream = start(provider)  # must not raise
    assert client is None or client.requests_sent == 0  # and must not have sent anything yet
    with pytest.raises(error):
        await anext(stream)
    if client is not None:
        assert client.responses_open == 0


@pytest.mark.parametrize("kind", ["anthropic", "gemini", "openai", "openai-raw"])
async def test_stopping_early_closes_the_upstream_response_at_once(
    make, kind, openai_upstream, anthropic_upstream, gemini_upstream
):
    for upstream in (openai_upstream, anthropic_upstream, gemini_upstream):
        upstream.config.token_count = 50
    client = UpstreamClient()
    provider = make(kind.removesuffix("-raw"), client)
    if kind == "openai":
        provider.upstream_model = "m"
        stream = provider.stream_chat(chat())
    elif kind == "openai-raw":
        provider.upstream_model = "m"
        stream = provider.stream_chat_raw(chat())
    else:
        stream = provider.stream_chat(chat())
    await anext(stream)
    assert client.responses_open == 1
    await stream.aclose()
    assert client.responses_open == 0  # released by aclose itself, not later


async def test_stopping_early_frees_the_local_slot_at_once(tiny_model_path):
    provider = LocalProvider(str(tiny_model_path), device="cpu", max_concurrency=1)
    for start in (
        lambda: provider.stream_chat(chat(max_tokens=50, ignore_eos=True)),
        lambda: provider.stream_completion(completion(max_tokens=50, ignore_eos=True)),
    ):
        stream = start()
        await anext(stream)
        assert provider.running == 1
        await stream.aclose()
        assert provider.running == 0  # the slot is free the moment aclose returns
        assert not provider._semaphore.locked()
