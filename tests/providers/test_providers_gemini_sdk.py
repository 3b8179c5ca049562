"""The Gemini stand-in against Google's official SDK (``google-genai``), and our adapter's
request body against the SDK's own (extra-field-forbidding) types.

The SDK is pointed at the stand-in with ``HttpOptions(base_url=...)``; whatever it accepts
and parses the way it parses the hosted API is what the adapter tests rely on.
"""

from __future__ import annotations

import json

import httpx
import pytest

from arena.protocol import ChatCompletionRequest
from arena.providers.gemini import GeminiProvider

genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import types  # noqa: E402

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAE"
    "hQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture
def sdk(gemini_upstream):
    client = genai.Client(
        api_key="g-key", http_options=types.HttpOptions(base_url=gemini_upstream.url, timeout=5000)
    )
    yield client
    client.close()


def test_generate_content_text_finish_and_usage(sdk, gemini_upstream):
    gemini_upstream.config.reply = "Fine thanks"
    reply = sdk.models.generate_content(
        model="gemini-x",
        contents="How are you",
        config=types.GenerateContentConfig(system_instruction="Be nice", temperature=0.2),
    )
    assert reply.text == "Fine thanks"
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    usage = reply.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (5, 2)
    assert usage.total_token_count == 7
    sent = gemini_upstream.config.requests[-1]
    assert sent["_method"] == "generateContent"
    assert sent["generationConfig"] == {"temperature": 0.2}
    assert gemini_upstream.config.headers[-1]["x-goog-api-key"] == "g-key"


def test_generate_content_max_tokens_and_function_call(sdk, gemini_upstream):
    gemini_upstream.config.reply = "one two three four"
    cut = sdk.models.generate_content(
        model="gemini-x",
        contents="count",
        config=types.GenerateContentConfig(max_output_tokens=2),
    )
    assert cut.text == "one two "
    assert cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="weather",
                parameters_json_schema={"type": "object", "properties": {"city": {}}},
            )
        ]
    )
    called = sdk.models.generate_content(
        model="gemini-x",
        contents="weather?",
        config=types.GenerateContentConfig(
            tools=[tool],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    assert called.function_calls[0].name == "weather"
    assert called.function_calls[0].args == {"city": "Paris"}


def test_generate_content_stream_chunks_and_final_usage(sdk, gemini_upstream):
    gemini_upstream.config.reply = "a b c"
    chunks = list(sdk.models.generate_content_stream(model="gemini-x", contents="go on"))
    assert gemini_upstream.config.requests[-1]["_alt"] == "sse"
    assert "".join(c.text or "" for c in chunks) == "a b c"
    assert [c.candidates[0].finish_reason for c in chunks][-1] == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    # Every chunk carries usage so far; the last one has the answer's count too.
    assert all(c.usage_metadata.prompt_token_count == 2 for c in chunks)
    assert chunks[-1].usage_metadata.candidates_token_count == 3
    assert chunks[-1].usage_metadata.total_token_count == 5


async def test_async_stream(sdk, gemini_upstream):
    gemini_upstream.config.reply = "x y"
    stream = await sdk.aio.models.generate_content_stream(model="gemini-x", contents="hi")
    texts = [chunk.text async for chunk in stream]
    await sdk.aio.aclose()
    assert "".join(texts) == "x y"


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("400", genai_errors.ClientError, "INVALID_ARGUMENT"),
        ("context_length", genai_errors.ClientError, "INVALID_ARGUMENT"),
        ("403", genai_errors.ClientError, "PERMISSION_DENIED"),
        ("404", genai_errors.ClientError, "NOT_FOUND"),
        ("429", genai_errors.ClientError, "RESOURCE_EXHAUSTED"),
        ("500", genai_errors.ServerError, "INTERNAL"),
        ("503", genai_errors.ServerError, "UNAVAILABLE"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
def test_error_statuses(sdk, fault, error, status, streamed):
    with pytest.raises(error) as caught:
        if streamed:
            list(sdk.models.generate_content_stream(model=f"fault-{fault}", contents="hi"))
        else:
            sdk.models.generate_content(model=f"fault-{fault}", contents="hi")
    assert caught.value.status == status
    assert caught.value.code == int(fault) if fault.isdigit() else caught.value.code == 400
    if fault == "429":
        (detail,) = caught.value.details["error"]["details"]
        assert detail["@type"].endswith("RetryInfo") and detail["retryDelay"] == "7s"


def test_invalid_api_key(gemini_upstream):
    gemini_upstream.config.api_key = "right"
    client = genai.Client(
        api_key="wrong", http_options=types.HttpOptions(base_url=gemini_upstream.url)
    )
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="gemini-x", contents="hi")
    client.close()
    assert caught.value.code == 400
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_mid_stream_error_event(sdk, gemini_upstream):
    gemini_upstream.config.reply = "one two three four"
    texts = []
    with pytest.raises(genai_errors.ServerError) as caught:
        for chunk in sdk.models.generate_content_stream(model="fault-error_event", contents="hi"):
            texts.append(chunk.text)
    assert texts == ["one ", "two "]
    assert caught.value.code == 503 and caught.value.status == "UNAVAILABLE"


def test_model_metadata(sdk):
    model = sdk.models.get(model="gemini-x")
    assert model.name == "models/gemini-x" and model.input_token_limit == 1048576


def _raw_events(url: str, body: dict) -> list[dict]:
    with httpx.Client() as client:
        response = client.post(
            f"{url}/v1beta/models/gemini-x:streamGenerateContent?alt=sse", json=body
        )
    return [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


@pytest.mark.parametrize("tools", [False, True])
def test_stand_in_stream_events_fit_sdk_types_exactly(gemini_upstream, tools):
    """The SDK drops unknown fields when it parses; its types forbid them. Validating the raw
    events directly catches a misspelt or invented field in the stand-in."""
    body = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
    if tools:
        body["tools"] = [{"functionDeclarations": [{"name": "f"}]}]
    events = _raw_events(gemini_upstream.url, body)
    assert events
    for event in events:
        types.GenerateContentResponse.model_validate(event)


def test_adapter_request_body_fits_sdk_types_exactly(gemini_upstream):
    """What our adapter sends is made only of fields the SDK's request types know."""
    provider = GeminiProvider(base_url=gemini_upstream.url, upstream_model="gemini-x")
    request = ChatCompletionRequest(
        model="public",
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q": "x"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"found": true}'},
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "find",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        response_format={"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
        temperature=0.3,
        top_p=0.9,
        max_tokens=20,
        stop=["END"],
        n=2,
        seed=5,
        presence_penalty=0.1,
        frequency_penalty=0.2,
    )
    body = provider.build_body(request)
    assert set(body) == {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig"}
    for content in body["contents"]:
        types.Content.model_validate(content)
    types.Content.model_validate(body["systemInstruction"])
    config = types.GenerationConfig.model_validate(body["generationConfig"])
    assert config.candidate_count == 2 and config.response_json_schema == {"type": "object"}
    assert config.max_output_tokens == 20 and config.stop_sequences == ["END"]
    for tool in body["tools"]:
        types.Tool.model_validate(tool)
    tool_config = types.ToolConfig.model_validate(body["toolConfig"])
    assert tool_config.function_calling_config.mode == types.FunctionCallingConfigMode.ANY
    image = body["contents"][0]["parts"][1]
    assert types.Part.model_validate(image).inline_data.mime_type == "image/png"
