"""The official ``openai`` SDK against a real gateway (uvicorn on loopback) and a stand-in."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from arena.providers.registry import ModelSpec, RegistryFile

USER = [{"role": "user", "content": "Say hello"}]


def test_list_models(gateway, make_client):
    url, _, _ = gateway
    ids = [m.id for m in make_client(url).models.list()]
    assert "standin" in ids and "fault-500" in ids


def test_chat_plain(gateway, make_client):
    url, _, config = gateway
    reply = make_client(url).chat.completions.create(model="standin", messages=USER)
    assert reply.choices[0].message.content == "Hello from the stand-in upstream"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "standin"
    assert reply.usage.completion_tokens == 5
    # The gateway addressed the upstream's own model name.
    assert config.requests[-1]["model"] == "standin-model"


def test_chat_streaming_with_usage(gateway, make_client):
    url, _, _ = gateway
    stream = make_client(url).chat.completions.create(
        model="standin", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the stand-in upstream"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5


def test_streaming_without_usage_has_no_usage_chunk(gateway, make_client):
    url, _, _ = gateway
    chunks = list(
        make_client(url).chat.completions.create(model="standin", messages=USER, stream=True)
    )
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_raw_stream_ends_with_done(gateway):
    url, _, _ = gateway
    with httpx.stream(
        "POST",
        url + "/v1/chat/completions",
        json={"model": "standin", "messages": USER, "stream": True},
        timeout=10,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_completions(gateway, make_client):
    url, _, _ = gateway
    reply = make_client(url).completions.create(model="standin", prompt="Once", max_tokens=3)
    assert reply.choices[0].text == "Hello from the "
    assert reply.choices[0].finish_reason == "length"
    streamed = make_client(url).completions.create(
        model="standin", prompt="Once", max_tokens=3, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "Hello from the "


def test_embeddings_float_and_base64(gateway, make_client):
    url, _, _ = gateway
    sdk = make_client(url)
    # The SDK asks for base64 by default and decodes it itself.
    default = sdk.embeddings.create(model="standin", input=["alpha", "beta"])
    floats = sdk.embeddings.create(
        model="standin", input=["alpha", "beta"], encoding_format="float"
    )
    assert len(default.data) == 2 and len(default.data[0].embedding) == 8
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert default.data[0].embedding != default.data[1].embedding
    assert floats.usage.prompt_tokens == 2


def test_tool_calls_are_folded(gateway, make_client):
    url, _, _ = gateway
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    reply = make_client(url).chat.completions.create(model="standin", messages=USER, tools=tools)
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "weather"
    assert call.function.arguments == '{"city": "Paris"}'
    assert reply.choices[0].finish_reason == "tool_calls"


# ---------------------------------------------------------------- errors before streaming


def test_validation_error_is_400_naming_the_param(gateway, make_client):
    url, _, _ = gateway
    with pytest.raises(openai.BadRequestError) as info:
        make_client(url).chat.completions.create(model="standin", messages=[])
    assert info.value.status_code == 400
    assert info.value.body["param"] == "messages"
    assert info.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as info:
        make_client(url).chat.completions.create(model="standin", messages=USER, temperature=7)
    assert info.value.body["param"] == "temperature"


def test_malformed_json_is_400(gateway):
    url, _, _ = gateway
    response = httpx.post(
        url + "/v1/chat/completions",
        content=b'{"model": "standin", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "JSON" in response.json()["error"]["message"]


def test_unknown_model_is_404(gateway, make_client):
    url, _, _ = gateway
    with pytest.raises(openai.NotFoundError) as info:
        make_client(url).chat.completions.create(model="no-such-model", messages=USER)
    assert info.value.status_code == 404
    assert info.value.body["code"] == "model_not_found"


def test_too_large_is_413(gateway, make_client):
    url, _, config = gateway
    big = [{"role": "user", "content": "x" * 100_000}]
    with pytest.raises(openai.APIStatusError) as info:
        make_client(url).chat.completions.create(model="standin", messages=big)
    assert info.value.status_code == 413

    # A chunked upload without Content-Length is measured as it arrives.
    def body():
        yield b'{"model": "standin", "messages": [{"role": "user", "content": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}]}'

    response = httpx.post(url + "/v1/chat/completions", content=body())
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert not config.requests  # nothing reached the upstream


def test_upstream_rate_limit_is_429_with_retry_after(gateway, make_client):
    url, _, _ = gateway
    config = gateway[2]
    config.fault = "429"
    with pytest.raises(openai.RateLimitError) as info:
        make_client(url).chat.completions.create(model="standin", messages=USER)
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "7"


def test_upstream_500_is_502(gateway, make_client):
    url, _, _ = gateway
    with pytest.raises(openai.InternalServerError) as info:
        make_client(url).chat.completions.create(model="fault-500", messages=USER)
    assert info.value.status_code == 502
    assert info.value.body["type"] == "upstream_error"


def test_upstream_timeout_is_504(gateway, make_client):
    url, _, _ = gateway
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        make_client(url).chat.completions.create(model="fault-slow_first_token", messages=USER)
    assert info.value.status_code == 504
    # Cut off by first_token_timeout_s (5 s), not by the stand-in's minute-long delay.
    assert time.monotonic() - started < 30


def test_no_live_worker_is_503(standin, gateway_factory, make_settings, make_client):
    registry = RegistryFile(models=[ModelSpec(name="pooled", provider="workers")])
    with gateway_factory(make_settings(), {}, registry=registry) as (url, _):
        assert "pooled" in [m.id for m in make_client(url).models.list()]
        with pytest.raises(openai.InternalServerError) as info:
            make_client(url).chat.completions.create(model="pooled", messages=USER)
    assert info.value.status_code == 503
    assert info.value.body["code"] == "no_healthy_worker"


def test_unsupported_method_and_path_are_openai_shaped(gateway):
    url, _, _ = gateway
    missing = httpx.get(url + "/v1/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = httpx.get(url + "/v1/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()


# ---------------------------------------------------------------- errors after streaming began


@pytest.mark.parametrize("fault", ["hang", "malformed", "drop", "error_event"])
def test_mid_stream_failure_ends_with_an_error_event(gateway, make_client, fault):
    url, _, _ = gateway
    started = time.monotonic()
    stream = make_client(url).chat.completions.create(
        model=f"fault-{fault}", messages=USER, stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Hello from "  # the two tokens before the fault
    # Cut off by stream_idle_timeout_s (5 s), not by the stand-in's minute-long hang.
    assert time.monotonic() - started < 30
    assert info.value.body is None or "message" in info.value.body


def test_mid_stream_failure_in_non_streaming_request_is_502_or_504(gateway, make_client):
    url, _, _ = gateway
    with pytest.raises(openai.APIStatusError) as info:
        make_client(url).chat.completions.create(model="fault-hang", messages=USER)
    assert info.value.status_code == 504
    with pytest.raises(openai.APIStatusError) as info:
        make_client(url).chat.completions.create(model="fault-malformed", messages=USER)
    assert info.value.status_code == 502


# ---------------------------------------------------------------- client disconnects


def test_client_disconnect_cancels_streaming_upstream(gateway):
    url, _, config = gateway
    config.token_count, config.token_interval_s = 200, 0.05
    with httpx.stream(
        "POST",
        url + "/v1/chat/completions",
        json={"model": "standin", "messages": USER, "stream": True},
        timeout=10,
    ) as response:
        for line in response.iter_lines():
            if '"content":"the' in line:
                break  # leave after the first token
    assert config.disconnected.wait(60), "the upstream never saw the client leave"


def test_client_disconnect_cancels_non_streaming_upstream(gateway):
    url, app, config = gateway
    config.token_count, config.token_interval_s = 200, 0.05
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            url + "/v1/chat/completions",
            json={"model": "standin", "messages": USER},
            timeout=httpx.Timeout(10, read=0.5),
        )
    assert config.disconnected.wait(60), "the upstream never saw the client leave"
    deadline = time.monotonic() + 60
    while app.state.gateway.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.state.gateway.in_flight == 0


# ---------------------------------------------------------------- health and metrics


def test_health_and_metrics(gateway, make_client):
    url, _, _ = gateway
    sdk = make_client(url)
    sdk.chat.completions.create(model="standin", messages=USER)
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model="fault-500", messages=USER)
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    text = httpx.get(url + "/metrics").text  # an open gateway: no key needed
    assert 'arena_requests_total{endpoint="chat",model="standin",status="200"} 1.0' in text
    assert 'arena_requests_total{endpoint="chat",model="fault-500",status="502"} 1.0' in text
    assert 'arena_tokens_total{kind="completion",model="standin"} 5.0' in text
    assert 'arena_upstream_errors_total{code="upstream_error",model="fault-500"} 1.0' in text
    assert "arena_request_latency_seconds_bucket" in text
    assert 'arena_requests_in_flight{endpoint="chat"} 0.0' in text
    assert "# TYPE arena_workers gauge" in text


def test_an_unexpected_error_is_an_openai_shaped_500(gateway, make_client):
    url, app, _ = gateway

    def broken_router(model: str):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug in the gateway itself")

    app.state.gateway.router.targets = broken_router
    with pytest.raises(openai.InternalServerError) as info:
        make_client(url).chat.completions.create(model="standin", messages=USER)
    assert info.value.status_code == 500
    assert info.value.body["type"] == "server_error"
    assert httpx.get(url + "/health").status_code == 200  # and the server carries on
