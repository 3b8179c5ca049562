"""The OpenAI-compatible adapter against a stand-in upstream speaking OpenAI's wire format."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from arena.errors import (
    BadRequest,
    ContextLengthExceeded,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from arena.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from arena.providers.openai_compat import OpenAICompatProvider
from arena.providers.upstream_http import Timeouts

from .conftest import CUT_OFF_S, FAST


def chat(content: str = "Hello", **kwargs) -> ChatCompletionRequest:
    return ChatCompletionRequest(
        model="public-name", messages=[{"role": "user", "content": content}], **kwargs
    )


def provider(upstream, **kwargs) -> OpenAICompatProvider:
    kwargs.setdefault("timeouts", FAST)
    return OpenAICompatProvider(base_url=upstream.url + "/v1", upstream_model="up-model", **kwargs)


async def collect(iterator):
    return [d async for d in iterator]


def text_of(deltas, index: int = 0) -> str:
    return "".join(d.text for d in deltas if d.index == index)


async def test_stream_chat_text_finish_and_usage(openai_upstream):
    openai_upstream.config.reply = "Hello there, my friend"
    p = provider(openai_upstream)
    deltas = await collect(p.stream_chat(chat("Say hi to me")))
    await p.aclose()
    assert text_of(deltas) == "Hello there, my friend"
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    usage = [d.usage for d in deltas if d.usage]
    assert usage and usage[-1].prompt_tokens == 4 and usage[-1].completion_tokens == 4
    body = openai_upstream.config.requests[-1]
    assert body["model"] == "up-model"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_passes_through_openai_fields_and_unknown_extras(openai_upstream):
    p = provider(openai_upstream, params={"temperature": 0.3, "top_k": 40, "max_tokens": 50})
    request = chat(
        "hi",
        seed=7,
        temperature=0.9,
        response_format={"type": "json_object"},
        logprobs=True,
        top_logprobs=2,
        repetition_penalty=1.1,
        min_p=0.05,
    )
    deltas = await collect(p.stream_chat(request))
    await p.aclose()
    body = openai_upstream.config.requests[-1]
    assert body["seed"] == 7
    assert body["temperature"] == 0.9  # the client's value wins over params
    assert body["top_k"] == 40 and body["max_tokens"] == 50  # params fill the gaps
    assert body["repetition_penalty"] == 1.1 and body["min_p"] == 0.05
    assert body["response_format"] == {"type": "json_object"}
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert json.loads(text_of(deltas))["answer"].startswith("Stand-in answer")
    assert any(d.logprobs and d.logprobs["content"][0]["logprob"] == -0.25 for d in deltas)


async def test_n_choices_arrive_with_their_index(openai_upstream):
    openai_upstream.config.reply = "one two three"
    p = provider(openai_upstream)
    deltas = await collect(p.stream_chat(chat(n=3)))
    await p.aclose()
    assert openai_upstream.config.requests[-1]["n"] == 3
    for i in range(3):
        assert text_of(deltas, i) == "one two three"
        assert [d.finish_reason for d in deltas if d.index == i and d.finish_reason] == ["stop"]


async def test_tools_pass_through_and_tool_call_deltas_come_back(openai_upstream):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    p = provider(openai_upstream)
    deltas = await collect(p.stream_chat(chat("weather?", tools=tools, tool_choice="auto")))
    await p.aclose()
    body = openai_upstream.config.requests[-1]
    assert body["tools"] == tools and body["tool_choice"] == "auto"
    calls = [c for d in deltas if d.tool_calls for c in d.tool_calls]
    assert calls[0]["function"]["name"] == "get_weather" and calls[0]["id"].startswith("call_")
    arguments = "".join(c["function"].get("arguments", "") for c in calls)
    assert json.loads(arguments) == {"city": "Paris"}
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["tool_calls"]


async def test_stop_and_max_tokens(openai_upstream):
    openai_upstream.config.reply = "alpha beta gamma delta epsilon"
    p = provider(openai_upstream)
    stopped = await collect(p.stream_chat(chat(stop=["gamma"])))
    limited = await collect(p.stream_chat(chat(max_tokens=2)))
    await p.aclose()
    assert text_of(stopped) == "alpha beta "
    assert openai_upstream.config.requests[0]["stop"] == ["gamma"]
    assert text_of(limited) == "alpha beta "
    assert [d.finish_reason for d in limited if d.finish_reason] == ["length"]


async def test_images_are_forwarded_as_content_parts(openai_upstream):
    image = "data:image/png;base64,iVBORw0KGgo="
    request = ChatCompletionRequest(
        model="m",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            }
        ],
    )
    p = provider(openai_upstream)
    deltas = await collect(p.stream_chat(request))
    await p.aclose()
    sent = openai_upstream.config.requests[-1]["messages"][0]["content"]
    assert sent[1] == {"type": "image_url", "image_url": {"url": image}}
    assert "[1 image(s)]" in text_of(deltas)


async def test_api_key_is_read_from_the_environment_at_call_time(openai_upstream, monkeypatch):
    openai_upstream.config.api_key = "sk-secret"
    p = provider(openai_upstream, api_key_env="TEST_UPSTREAM_KEY")
    monkeypatch.delenv("TEST_UPSTREAM_KEY", raising=False)
    with pytest.raises(UpstreamError, match="credentials"):
        await collect(p.stream_chat(chat()))
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "sk-secret")
    deltas = await collect(p.stream_chat(chat()))
    await p.aclose()
    assert text_of(deltas)
    assert openai_upstream.config.headers[-1]["authorization"] == "Bearer sk-secret"


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("400", BadRequest, "Invalid value for 'temperature'"),
        ("context_length", ContextLengthExceeded, "maximum context length"),
        ("401", UpstreamError, "credentials"),
        ("403", UpstreamError, "credentials"),
        ("404", UpstreamError, "404"),
        ("429", RateLimited, "Rate limit"),
        ("500", UpstreamError, "HTTP 500"),
        ("503", UpstreamError, "HTTP 503"),
    ],
)
async def test_error_statuses_become_typed_errors(openai_upstream, fault, error, words):
    openai_upstream.config.fault = fault
    p = provider(openai_upstream)
    with pytest.raises(error, match=words) as caught:
        await collect(p.stream_chat(chat()))
    await p.aclose()
    assert type(caught.value) is error
    if error is BadRequest:
        assert caught.value.message == "Invalid value for 'temperature'."  # upstream's words
    if error is RateLimited:
        assert caught.value.retry_after_s == 7.0
        assert caught.value.headers["Retry-After"] == "7"


async def test_fault_chosen_by_model_name(openai_upstream):
    p = OpenAICompatProvider(
        base_url=openai_upstream.url + "/v1", upstream_model="fault-500", timeouts=FAST
    )
    with pytest.raises(UpstreamError):
        await collect(p.stream_chat(chat()))
    await p.aclose()


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("slow_first_byte", "no first token within 1s"),
        ("slow_first_token", "no first token within 1s"),
    ],
)
async def test_first_token_timeout(openai_upstream, fault, words):
    openai_upstream.config.fault = fault
    p = provider(openai_upstream)
    start = time.monotonic()
    with pytest.raises(UpstreamTimeout, match=words):
        await collect(p.stream_chat(chat()))
    assert time.monotonic() - start < CUT_OFF_S  # the 1 s limit, not the stand-in's minute
    await p.aclose()


async def test_hang_mid_stream_hits_the_idle_timeout_and_closes_upstream(openai_upstream):
    openai_upstream.config.fault = "hang"
    openai_upstream.config.token_count = 10
    p = provider(openai_upstream)
    received = []
    start = time.monotonic()
    with pytest.raises(UpstreamTimeout, match=r"no data for 0\.5s"):
        async for d in p.stream_chat(chat()):
            received.append(d)
    assert time.monotonic() - start < CUT_OFF_S  # the 0.5 s limit, not the stand-in's minute
    assert text_of(received) == "the quick "  # what came before the hang was delivered
    assert await asyncio.to_thread(openai_upstream.config.disconnected.wait, CUT_OFF_S)
    await p.aclose()


async def test_keepalive_comments_do_not_hide_a_stalled_answer(openai_upstream):
    openai_upstream.config.fault = "hang_with_pings"
    openai_upstream.config.token_count = 10
    p = provider(openai_upstream)
    received = []
    start = time.monotonic()
    with pytest.raises(UpstreamTimeout, match=r"no data for 0\.5s"):
        async for d in p.stream_chat(chat()):
            received.append(d)
    assert time.monotonic() - start < CUT_OFF_S  # the 0.5 s limit, not the stand-in's minute
    assert text_of(received) == "the quick "
    await p.aclose()


async def test_whole_request_timeout_with_a_steady_trickle(openai_upstream):
    openai_upstream.config.token_count = 50
    openai_upstream.config.token_interval_s = 0.1
    p = provider(openai_upstream, timeouts=Timeouts(connect=1, first_token=1, idle=0.5, total=0.8))
    with pytest.raises(UpstreamTimeout, match=r"longer than 0\.8s"):
        await collect(p.stream_chat(chat()))
    await p.aclose()


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("malformed", "malformed event data"),
        ("drop", "the stream broke"),
        ("no_done", r"without \[DONE\]"),
        ("error_event", "error mid-stream"),
        ("not_sse", "expected an event stream"),
    ],
)
async def test_broken_streams_are_upstream_errors(openai_upstream, fault, words):
    openai_upstream.config.fault = fault
    openai_upstream.config.token_count = 6
    p = provider(openai_upstream)
    with pytest.raises(UpstreamError, match=words):
        await collect(p.stream_chat(chat()))
    await p.aclose()


async def test_keepalive_comments_are_tolerated(openai_upstream):
    openai_upstream.config.fault = "keepalive"
    openai_upstream.config.reply = "still here"
    p = provider(openai_upstream)
    assert text_of(await collect(p.stream_chat(chat()))) == "still here"
    await p.aclose()


async def test_unreachable_upstream_is_an_upstream_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = OpenAICompatProvider(
        base_url=f"http://127.0.0.1:{port}/v1", upstream_model="m", timeouts=FAST
    )
    with pytest.raises(UpstreamError, match="cannot reach upstream"):
        await collect(p.stream_chat(chat()))
    assert await p.health() is False
    await p.aclose()


async def test_consumer_aclose_closes_the_upstream_connection(openai_upstream):
    openai_upstream.config.token_count = 200
    openai_upstream.config.token_interval_s = 0.02
    p = provider(openai_upstream)
    stream = p.stream_chat(chat())
    got = [await anext(stream) for _ in range(3)]
    assert text_of(got)
    await stream.aclose()
    assert await asyncio.to_thread(openai_upstream.config.disconnected.wait, CUT_OFF_S)
    await p.aclose()


async def test_cancelled_consumer_task_closes_the_upstream_connection(openai_upstream):
    openai_upstream.config.token_count = 200
    openai_upstream.config.token_interval_s = 0.02
    p = provider(openai_upstream)
    first = asyncio.Event()

    async def consume():
        async for _ in p.stream_chat(chat()):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), CUT_OFF_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(openai_upstream.config.disconnected.wait, CUT_OFF_S)
    await p.aclose()


async def test_raw_fast_path_yields_upstream_chunks_verbatim(openai_upstream):
    openai_upstream.config.reply = "raw words"
    p = provider(openai_upstream)
    batches = await collect(p.stream_chat_raw(chat()))
    assert batches and all(isinstance(b, list) and b for b in batches)
    chunks = [c for batch in batches for c in batch]
    parsed = [json.loads(c) for c in chunks]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "up-model" for c in parsed)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in parsed if c["choices"])
    assert text == "raw words"
    assert "stream_options" not in openai_upstream.config.requests[-1]  # client did not ask
    openai_upstream.config.fault = "error_event"
    openai_upstream.config.token_count = 5
    with pytest.raises(UpstreamError, match="mid-stream"):
        await collect(p.stream_chat_raw(chat()))
    openai_upstream.config.fault = "hang"
    with pytest.raises(UpstreamTimeout):
        await collect(p.stream_chat_raw(chat()))
    await p.aclose()


async def test_completions_stream(openai_upstream):
    openai_upstream.config.reply = "once upon a time"
    p = provider(openai_upstream)
    deltas = await collect(
        p.stream_completion(CompletionRequest(model="m", prompt="Tell me", max_tokens=3))
    )
    batches = await collect(p.stream_completion_raw(CompletionRequest(model="m", prompt="Tell me")))
    raw = [c for batch in batches for c in batch]
    await p.aclose()
    assert text_of(deltas) == "once upon a "
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["length"]
    assert any(d.usage and d.usage.completion_tokens == 3 for d in deltas)
    assert json.loads(raw[0])["object"] == "text_completion"


async def test_embeddings_health_and_models(openai_upstream):
    p = provider(openai_upstream)
    result = await p.embed(EmbeddingRequest(model="m", input=["a b", "c"], dimensions=4))
    assert len(result.vectors) == 2 and len(result.vectors[0]) == 4
    assert result.prompt_tokens == 3
    assert openai_upstream.config.requests[-1]["encoding_format"] == "float"
    assert await p.health() is True
    assert await p.list_models() == ["standin-model"]
    openai_upstream.config.fault = "500"
    with pytest.raises(UpstreamError):
        await p.embed(EmbeddingRequest(model="m", input="x"))
    assert await p.health() is False
    await p.aclose()


async def test_one_client_reuses_its_connection(openai_upstream):
    p = provider(openai_upstream)
    for _ in range(3):
        await collect(p.stream_chat(chat()))
    assert p._client.connections_opened == 1  # keep-alive: three requests, one connection
    await p.aclose()


async def test_health_has_one_deadline_for_the_whole_probe(openai_upstream):
    """An upstream that trickles its answer byte by byte never trips a per-read timeout;
    the probe must still give up (unhealthy) within its own limit."""
    openai_upstream.config.fault = "trickle"
    openai_upstream.config.token_interval_s = 0.2
    p = provider(
        openai_upstream, timeouts=Timeouts(connect=1.0, first_token=1.0, idle=1.0, total=1.0)
    )
    started = time.monotonic()
    assert await asyncio.wait_for(p.health(), timeout=CUT_OFF_S) is False
    assert time.monotonic() - started < 10  # its 1 s limit, not the 20 s the trickle lasts
    await p.aclose()
