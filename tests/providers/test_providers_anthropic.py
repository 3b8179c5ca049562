"""The Anthropic adapter against a stand-in speaking the Messages API wire format."""

from __future__ import annotations

import asyncio
import json

import pytest

from arena.errors import (
    BadRequest,
    ContextLengthExceeded,
    NotSupported,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from arena.protocol import ChatCompletionRequest
from arena.providers.anthropic import AnthropicProvider

from .conftest import CUT_OFF_S, FAST

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg=="
)


def provider(upstream, **kwargs) -> AnthropicProvider:
    kwargs.setdefault("timeouts", FAST)
    return AnthropicProvider(base_url=upstream.url, upstream_model="claude-test", **kwargs)


def chat(messages=None, **kwargs) -> ChatCompletionRequest:
    messages = messages or [{"role": "user", "content": "Hello"}]
    return ChatCompletionRequest(model="public", messages=messages, **kwargs)


async def collect(iterator):
    return [d async for d in iterator]


def text_of(deltas) -> str:
    return "".join(d.text for d in deltas)


async def test_streams_text_finish_and_usage(anthropic_upstream):
    anthropic_upstream.config.reply = "Bonjour à tous"
    anthropic_upstream.config.fault = "keepalive"  # pings between deltas are ignored
    p = provider(anthropic_upstream, api_key="sk-ant-test")
    deltas = await collect(
        p.stream_chat(
            chat(
                [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Say hello"},
                    {"role": "assistant", "content": "Hi."},
                    {"role": "user", "content": "In French please"},
                ],
                temperature=1.5,
                top_p=0.9,
                user="user-1",
            )
        )
    )
    await p.aclose()
    assert text_of(deltas) == "Bonjour à tous"
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert deltas[-1].usage.prompt_tokens == 8 and deltas[-1].usage.completion_tokens == 3
    body = anthropic_upstream.config.requests[-1]
    headers = anthropic_upstream.config.headers[-1]
    assert headers["x-api-key"] == "sk-ant-test" and headers["anthropic-version"] == "2023-06-01"
    assert body["system"] == "Be brief."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["max_tokens"] == 4096 and body["stream"] is True
    assert body["temperature"] == 1.0  # clamped to Anthropic's range
    assert body["top_p"] == 0.9 and body["metadata"] == {"user_id": "user-1"}


async def test_stop_sequences_and_max_tokens_map_to_finish_reasons(anthropic_upstream):
    anthropic_upstream.config.reply = "one two three four five"
    p = provider(anthropic_upstream, params={"max_tokens": 100})
    stopped = await collect(p.stream_chat(chat(stop=["three"])))
    assert anthropic_upstream.config.requests[-1]["stop_sequences"] == ["three"]
    assert anthropic_upstream.config.requests[-1]["max_tokens"] == 100
    limited = await collect(p.stream_chat(chat(max_tokens=2)))
    await p.aclose()
    assert text_of(stopped) == "one two "
    assert [d.finish_reason for d in stopped if d.finish_reason] == ["stop"]
    assert text_of(limited) == "one two "
    assert [d.finish_reason for d in limited if d.finish_reason] == ["length"]


async def test_images_become_base64_and_url_sources(anthropic_upstream):
    p = provider(anthropic_upstream)
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "compare"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg"}},
        ],
    }
    deltas = await collect(p.stream_chat(chat([message])))
    blocks = anthropic_upstream.config.requests[-1]["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.org/cat.jpg"},
    }
    assert "[2 image(s)]" in text_of(deltas)
    bad = {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "data:text/plain;base64,aGk="}}],
    }
    with pytest.raises(BadRequest, match="image type text/plain"):
        await collect(p.stream_chat(chat([bad])))
    await p.aclose()


async def test_tools_round_trip(anthropic_upstream):
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
    p = provider(anthropic_upstream)
    deltas = await collect(p.stream_chat(chat(tools=tools, tool_choice="required")))
    body = anthropic_upstream.config.requests[-1]
    assert body["tools"][0] == {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    assert body["tool_choice"] == {"type": "any"}
    calls = [c for d in deltas if d.tool_calls for c in d.tool_calls]
    assert calls[0]["id"].startswith("toolu_") and calls[0]["function"]["name"] == "get_weather"
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"city": "Paris"}
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["tool_calls"]

    # The answer to the call goes back as a tool_result block.
    follow_up = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": calls[0]["id"],
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"},
    ]
    deltas = await collect(p.stream_chat(chat(follow_up, tools=tools)))
    await p.aclose()
    sent = anthropic_upstream.config.requests[-1]["messages"]
    assert sent[1]["content"] == [
        {
            "type": "tool_use",
            "id": calls[0]["id"],
            "name": "get_weather",
            "input": {"city": "Paris"},
        }
    ]
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": calls[0]["id"], "content": "sunny"}],
    }
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]


async def test_unsupported_options_are_refused_clearly(anthropic_upstream):
    p = provider(anthropic_upstream)
    with pytest.raises(NotSupported, match="n must be 1"):
        await collect(p.stream_chat(chat(n=2)))
    with pytest.raises(NotSupported, match="logprobs"):
        await collect(p.stream_chat(chat(logprobs=True)))
    await p.aclose()


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("400", BadRequest, "temperature: range"),
        ("context_length", ContextLengthExceeded, "prompt is too long"),
        ("401", UpstreamError, "credentials"),
        ("403", UpstreamError, "credentials"),
        ("404", UpstreamError, "404"),
        ("413", PayloadTooLarge, "maximum allowed"),
        ("429", RateLimited, "rate limit"),
        ("500", UpstreamError, "HTTP 500"),
        ("529", UpstreamError, "Overloaded"),
    ],
)
async def test_error_bodies_become_typed_errors(anthropic_upstream, fault, error, words):
    anthropic_upstream.config.fault = fault
    p = provider(anthropic_upstream)
    with pytest.raises(error, match=words) as caught:
        await collect(p.stream_chat(chat()))
    await p.aclose()
    assert type(caught.value) is error
    if error is RateLimited:
        assert caught.value.retry_after_s == 7.0


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("slow_first_byte", UpstreamTimeout, "no first token"),
        ("slow_first_token", UpstreamTimeout, "no first token"),
        ("hang", UpstreamTimeout, "no data for"),
        ("malformed", UpstreamError, "malformed"),
        ("not_object", UpstreamError, "unexpected event"),
        ("drop", UpstreamError, "stream broke"),
        ("no_done", UpstreamError, "without message_stop"),
        ("error_event", UpstreamError, "overloaded_error mid-stream"),
    ],
)
async def test_timeouts_and_broken_streams(anthropic_upstream, fault, error, words):
    anthropic_upstream.config.fault = fault
    anthropic_upstream.config.token_count = 6
    p = provider(anthropic_upstream)
    with pytest.raises(error, match=words):
        await collect(p.stream_chat(chat()))
    await p.aclose()


async def test_consumer_going_away_closes_the_upstream(anthropic_upstream):
    anthropic_upstream.config.token_count = 200
    anthropic_upstream.config.token_interval_s = 0.02
    p = provider(anthropic_upstream)
    stream = p.stream_chat(chat())
    await anext(stream)
    await stream.aclose()
    assert await asyncio.to_thread(anthropic_upstream.config.disconnected.wait, CUT_OFF_S)
    await p.aclose()
