"""The stand-ins speak the real wire formats: the official SDKs parse them without error."""

from __future__ import annotations

import anthropic
import openai
import pytest

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def oai(openai_upstream):
    client = openai.OpenAI(
        base_url=openai_upstream.url + "/v1", api_key="sk-test", max_retries=0, timeout=5
    )
    yield client
    client.close()


@pytest.fixture
def claude(anthropic_upstream):
    client = anthropic.Anthropic(
        base_url=anthropic_upstream.url, api_key="sk-ant", max_retries=0, timeout=5
    )
    yield client
    client.close()


def test_openai_sdk_chat_plain_and_streamed(oai, openai_upstream):
    openai_upstream.config.reply = "Fine, thanks"
    reply = oai.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "How are you"}]
    )
    assert reply.choices[0].message.content == "Fine, thanks"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens == 3 and reply.usage.completion_tokens == 2
    stream = oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "How are you"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Fine, thanks"
    assert chunks[-1].usage.total_tokens == 5


def test_openai_sdk_streamed_tool_calls(oai):
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with oai.chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "find it"}], tools=tools
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup" and call.function.arguments == '{"city": "Paris"}'
    assert final.choices[0].finish_reason == "tool_calls"


def test_openai_sdk_completions_embeddings_models(oai, openai_upstream):
    openai_upstream.config.reply = "a b c d"
    completion = oai.completions.create(model="m", prompt="x", max_tokens=2)
    assert completion.choices[0].text == "a b " and completion.choices[0].finish_reason == "length"
    streamed = list(oai.completions.create(model="m", prompt="x", stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "a b c d"
    embedded = oai.embeddings.create(model="m", input=["hello", "world"])  # SDK asks for base64
    assert len(embedded.data) == 2 and len(embedded.data[0].embedding) == 8
    assert [m.id for m in oai.models.list()] == ["standin-model"]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("400", openai.BadRequestError),
        ("401", openai.AuthenticationError),
        ("404", openai.NotFoundError),
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
    ],
)
def test_openai_sdk_error_bodies(oai, openai_upstream, fault, error):
    openai_upstream.config.fault = fault
    with pytest.raises(error) as caught:
        oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["message"]  # the SDK found error.message in our body


def test_openai_sdk_mid_stream_error_event(oai, openai_upstream):
    openai_upstream.config.fault = "error_event"
    openai_upstream.config.token_count = 5
    with pytest.raises(openai.APIError, match="mid-stream"):
        list(
            oai.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )


def test_anthropic_sdk_messages_plain_and_streamed(claude, anthropic_upstream):
    anthropic_upstream.config.reply = "Sure thing, here it is"
    message = claude.messages.create(
        model="claude-test",
        max_tokens=100,
        system="be nice",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                ],
            }
        ],
    )
    assert message.content[0].text == "Sure thing, here it is"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 5
    with claude.messages.stream(
        model="claude-test", max_tokens=3, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Sure thing, here "
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 3
    assert final.usage.input_tokens == 1


def test_anthropic_sdk_streamed_tool_use(claude):
    with claude.messages.stream(
        model="claude-test",
        max_tokens=100,
        messages=[{"role": "user", "content": "weather"}],
        tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
    ) as stream:
        final = stream.get_final_message()
    tool = next(b for b in final.content if b.type == "tool_use")
    assert tool.name == "get_weather" and tool.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("400", anthropic.BadRequestError),
        ("401", anthropic.AuthenticationError),
        ("403", anthropic.PermissionDeniedError),
        ("429", anthropic.RateLimitError),
        ("500", anthropic.InternalServerError),
        ("529", anthropic.APIStatusError),
    ],
)
def test_anthropic_sdk_error_bodies(claude, anthropic_upstream, fault, error):
    anthropic_upstream.config.fault = fault
    with pytest.raises(error) as caught:
        claude.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["error"]["type"]
    assert caught.value.status_code == int(fault)


def test_anthropic_sdk_mid_stream_error_event(claude, anthropic_upstream):
    anthropic_upstream.config.fault = "error_event"
    anthropic_upstream.config.token_count = 5
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        claude.messages.stream(
            model="m", max_tokens=50, messages=[{"role": "user", "content": "x"}]
        ) as s,
    ):
        list(s.text_stream)
