"""The Gemini adapter against a stand-in speaking the Gemini REST wire format."""

from __future__ import annotations

import asyncio
import json

import pytest

from arena.errors import (
    BadRequest,
    ContextLengthExceeded,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)
from arena.protocol import ChatCompletionRequest
from arena.providers.gemini import GeminiProvider, finish_reason

from .conftest import CUT_OFF_S, FAST

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg=="
)


def provider(upstream, **kwargs) -> GeminiProvider:
    kwargs.setdefault("timeouts", FAST)
    return GeminiProvider(base_url=upstream.url, upstream_model="gemini-test", **kwargs)


def chat(messages=None, **kwargs) -> ChatCompletionRequest:
    messages = messages or [{"role": "user", "content": "Hello"}]
    return ChatCompletionRequest(model="public", messages=messages, **kwargs)


async def collect(iterator):
    return [d async for d in iterator]


def text_of(deltas, index: int = 0) -> str:
    return "".join(d.text for d in deltas if d.index == index)


async def test_streams_text_finish_and_usage(gemini_upstream):
    gemini_upstream.config.reply = "Hallo zusammen"
    p = provider(gemini_upstream, api_key="g-key")
    deltas = await collect(
        p.stream_chat(
            chat(
                [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Greet"},
                    {"role": "assistant", "content": "Hi."},
                    {"role": "user", "content": "In German"},
                ],
                temperature=0.4,
                max_tokens=50,
                seed=3,
                response_format={"type": "json_object"},
            )
        )
    )
    await p.aclose()
    assert text_of(deltas) == "Hallo zusammen"
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    assert deltas[-1].usage.prompt_tokens == 6 and deltas[-1].usage.completion_tokens == 2
    body = gemini_upstream.config.requests[-1]
    assert body["_model"] == "gemini-test" and body["_method"] == "streamGenerateContent"
    assert body["_alt"] == "sse"
    assert gemini_upstream.config.headers[-1]["x-goog-api-key"] == "g-key"
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"] == {
        "temperature": 0.4,
        "maxOutputTokens": 50,
        "seed": 3,
        "responseMimeType": "application/json",
    }


async def test_candidates_stop_sequences_and_length(gemini_upstream):
    gemini_upstream.config.reply = "red green blue yellow"
    p = provider(gemini_upstream)
    deltas = await collect(p.stream_chat(chat(n=2, stop=["blue"])))
    assert gemini_upstream.config.requests[-1]["generationConfig"]["candidateCount"] == 2
    assert gemini_upstream.config.requests[-1]["generationConfig"]["stopSequences"] == ["blue"]
    assert text_of(deltas, 0) == text_of(deltas, 1) == "red green "
    limited = await collect(p.stream_chat(chat(max_tokens=1)))
    await p.aclose()
    assert text_of(limited) == "red "
    assert [d.finish_reason for d in limited if d.finish_reason] == ["length"]


async def test_data_url_images_are_inline_and_http_urls_are_refused(gemini_upstream):
    p = provider(gemini_upstream)
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is it"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ],
    }
    deltas = await collect(p.stream_chat(chat([message])))
    parts = gemini_upstream.config.requests[-1]["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert "[1 image(s)]" in text_of(deltas)
    remote = {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "https://x.org/a.png"}}],
    }
    with pytest.raises(BadRequest, match="only as data: URLs"):
        await collect(p.stream_chat(chat([remote])))
    await p.aclose()


async def test_function_calls_round_trip(gemini_upstream):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    p = provider(gemini_upstream)
    deltas = await collect(p.stream_chat(chat(tools=tools, tool_choice="auto")))
    body = gemini_upstream.config.requests[-1]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                    },
                }
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    calls = [c for d in deltas if d.tool_calls for c in d.tool_calls]
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["tool_calls"]
    follow_up = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": calls[0]["id"], "type": "function", "function": calls[0]["function"]}
            ],
        },
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": '{"sky": "clear"}'},
    ]
    deltas = await collect(p.stream_chat(chat(follow_up, tools=tools)))
    await p.aclose()
    contents = gemini_upstream.config.requests[-1]["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}}}],
    }
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]


def test_finish_reason_mapping():
    assert finish_reason("STOP", called_tool=False) == "stop"
    assert finish_reason("STOP", called_tool=True) == "tool_calls"
    assert finish_reason("MAX_TOKENS", called_tool=False) == "length"
    for reason in ("SAFETY", "RECITATION", "PROHIBITED_CONTENT", "SPII", "BLOCKLIST"):
        assert finish_reason(reason, called_tool=False) == "content_filter"


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("400", BadRequest, "Invalid value at"),
        ("context_length", ContextLengthExceeded, "input token count"),
        ("403", UpstreamError, "credentials"),
        ("404", UpstreamError, "404"),
        ("429", RateLimited, "exhausted"),
        ("500", UpstreamError, "HTTP 500"),
        ("503", UpstreamError, "HTTP 503"),
    ],
)
async def test_error_bodies_become_typed_errors(gemini_upstream, fault, error, words):
    gemini_upstream.config.fault = fault
    p = provider(gemini_upstream)
    with pytest.raises(error, match=words) as caught:
        await collect(p.stream_chat(chat()))
    await p.aclose()
    assert type(caught.value) is error
    if error is RateLimited:
        assert caught.value.retry_after_s == 7.0  # from the RetryInfo detail


async def test_invalid_api_key_is_our_problem_not_the_clients(gemini_upstream):
    gemini_upstream.config.api_key = "right"
    p = provider(gemini_upstream, api_key="wrong")
    with pytest.raises(UpstreamError, match="API key not valid") as caught:
        await collect(p.stream_chat(chat()))
    assert type(caught.value) is UpstreamError
    await p.aclose()


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("slow_first_byte", UpstreamTimeout, "no first token"),
        ("slow_first_token", UpstreamTimeout, "no first token"),
        ("hang", UpstreamTimeout, "no data for"),
        ("malformed", UpstreamError, "malformed"),
        ("drop", UpstreamError, "stream broke"),
        ("no_done", UpstreamError, "before a finish reason"),
        ("error_event", UpstreamError, "mid-stream"),
        ("not_sse", UpstreamError, "expected an event stream"),
    ],
)
async def test_timeouts_and_broken_streams(gemini_upstream, fault, error, words):
    gemini_upstream.config.fault = fault
    gemini_upstream.config.token_count = 6
    p = provider(gemini_upstream)
    with pytest.raises(error, match=words):
        await collect(p.stream_chat(chat()))
    await p.aclose()


async def test_consumer_going_away_closes_the_upstream(gemini_upstream):
    gemini_upstream.config.token_count = 200
    gemini_upstream.config.token_interval_s = 0.02
    p = provider(gemini_upstream)
    stream = p.stream_chat(chat())
    await anext(stream)
    await stream.aclose()
    assert await asyncio.to_thread(gemini_upstream.config.disconnected.wait, CUT_OFF_S)
    assert await p.health() is True
    await p.aclose()
