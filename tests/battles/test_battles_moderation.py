"""Moderation: the local word list, combining moderators, and the OpenAI-compatible client
against a stand-in speaking OpenAI's moderation wire format on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from arena.battles.moderation import (
    DEFAULT_FLAGGED_MESSAGE,
    CombinedModerator,
    ModerationResult,
    Moderator,
    WordListModerator,
    parse_word_list,
    raise_if_flagged,
)
from arena.errors import BadRequest
from arena.providers.moderation import UNAVAILABLE_MESSAGE, OpenAIModerationClient
from support.servers import StreamedBody, serve_app

# ---- the local word list -------------------------------------------------------------------


async def test_word_list_matches_whole_words_case_insensitively():
    mod = WordListModerator(["darn", "Heck No", "  ", "c++"])
    assert isinstance(mod, Moderator)
    flagged = await mod.check("Well, DARN it.")
    assert flagged.flagged and flagged.categories == ("blocked_words",)
    assert flagged.message == DEFAULT_FLAGGED_MESSAGE
    assert (await mod.check("heck   no, not today")).flagged
    assert (await mod.check("I wrote it in C++ yesterday")).flagged
    for clean in ("darnell and darning", "heck, no", "a heckling crowd", "c+ grade"):
        assert not (await mod.check(clean)).flagged, clean
    assert mod.matches("Darn! DARN.") == ["darn", "darn"]
    assert not (await WordListModerator([]).check("anything")).flagged


def test_word_list_file_format():
    text = "# blocked words\nfoo\n\n  bar baz  # a phrase\n#comment only\n"
    assert parse_word_list(text) == ["foo", "bar baz"]


def test_flagged_input_becomes_a_clear_400():
    raise_if_flagged(ModerationResult.clean())
    with pytest.raises(BadRequest) as e:
        raise_if_flagged(ModerationResult(flagged=True, categories=("hate",), message="No."))
    assert e.value.status_code == 400 and e.value.code == "content_flagged"
    assert e.value.message == "No."


async def test_combined_moderator_stops_at_the_first_flag():
    calls: list[str] = []

    class Recording:
        def __init__(self, name: str, result: ModerationResult):
            self.name, self.result = name, result

        async def check(self, text: str) -> ModerationResult:
            calls.append(self.name)
            return self.result

    broken = Recording("broken", ModerationResult(flagged=False, error="timed out"))
    words = WordListModerator(["spam"])
    never = Recording("never", ModerationResult.clean())
    combined = CombinedModerator([broken, words, never])
    assert (await combined.check("buy spam now")).flagged
    assert calls == ["broken"]
    ok = await combined.check("hello")
    assert not ok.flagged and ok.error == "timed out"


# ---- the HTTP client against an OpenAI-shaped stand-in --------------------------------------

CATEGORIES = [
    "sexual",
    "sexual/minors",
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "violence",
    "violence/graphic",
]


@dataclass
class Standin:
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)


def moderation_body(flagged_categories: set[str], model: str) -> dict[str, Any]:
    """OpenAI's moderation object: one result per input, every category present."""
    return {
        "id": "modr-5f0b2a7e1c9d4e3f8a6b0c1d2e3f4a5b",
        "model": model,
        "results": [
            {
                "flagged": bool(flagged_categories),
                "categories": {c: c in flagged_categories for c in CATEGORIES},
                "category_scores": {
                    c: (0.91 if c in flagged_categories else 0.0012) for c in CATEGORIES
                },
                "category_applied_input_types": {
                    c: (["text"] if c in flagged_categories else []) for c in CATEGORIES
                },
            }
        ],
    }


def openai_error(status: int, message: str, etype: str, code: str | None) -> JSONResponse:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def make_app(state: Standin) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/moderations")
    async def moderations(request: Request):
        body = await request.json()
        state.requests.append(body)
        state.auth.append(request.headers.get("authorization"))
        if state.mode == "401":
            return openai_error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        if state.mode == "500":
            return openai_error(500, "The server had an error.", "server_error", None)
        if state.mode == "hang":
            await asyncio.sleep(30)
        if state.mode == "drip":

            async def chunks():
                yield b'{"id": "modr-1", "model": "x", '
                await asyncio.sleep(30)
                yield b'"results": []}'

            return StreamedBody(chunks(), media_type="application/json")
        if state.mode == "not_json":
            return PlainTextResponse("<html>Bad gateway</html>", status_code=200)
        if state.mode == "wrong_shape":
            return JSONResponse({"id": "modr-1", "results": [{"categories": {}}]})
        text = body["input"]
        flagged = set()
        if "hurt" in text:
            flagged |= {"violence", "harassment/threatening", "harassment"}
        if "hate" in text:
            flagged.add("hate")
        return JSONResponse(moderation_body(flagged, body.get("model", "omni-moderation-latest")))

    return app


@pytest.fixture(scope="module")
def standin():
    state = Standin()
    with serve_app(make_app(state)) as url:
        yield state, url + "/v1"


@pytest.fixture(autouse=True)
def _reset(request):
    if "standin" in request.fixturenames:
        state, _ = request.getfixturevalue("standin")
        state.mode = "ok"
        state.requests.clear()
        state.auth.clear()


async def test_verdicts_are_read_from_the_openai_shape(standin):
    state, base = standin
    client = OpenAIModerationClient(base, api_key="sk-test", model="omni-moderation-latest")
    try:
        clean = await client.check("What's a good pasta recipe?")
        assert clean == ModerationResult(flagged=False)
        bad = await client.check("I will hurt you")
        assert bad.flagged and bad.error is None
        assert set(bad.categories) == {"violence", "harassment/threatening", "harassment"}
        assert bad.message == DEFAULT_FLAGGED_MESSAGE
        with pytest.raises(BadRequest):
            raise_if_flagged(bad)
    finally:
        await client.aclose()
    assert state.requests[0] == {
        "input": "What's a good pasta recipe?",
        "model": "omni-moderation-latest",
    }
    assert state.auth == ["Bearer sk-test", "Bearer sk-test"]


@pytest.mark.parametrize("mode", ["401", "500", "not_json", "wrong_shape"])
async def test_failures_follow_the_fail_policy(standin, mode):
    state, base = standin
    state.mode = mode
    open_client = OpenAIModerationClient(base, fail_mode="open")
    closed_client = OpenAIModerationClient(base, fail_mode="closed")
    try:
        passed = await open_client.check("hello")
        assert not passed.flagged and passed.error
        refused = await closed_client.check("hello")
        assert refused.flagged and refused.error
        assert refused.categories == ("moderation_unavailable",)
        assert refused.message == UNAVAILABLE_MESSAGE
    finally:
        await open_client.aclose()
        await closed_client.aclose()
    if mode == "401":
        assert "HTTP 401" in passed.error and "Incorrect API key" in passed.error


@pytest.mark.parametrize("mode", ["hang", "drip"])
async def test_a_silent_or_dripping_service_never_hangs_the_check(standin, mode):
    state, base = standin
    state.mode = mode
    client = OpenAIModerationClient(base, timeout_s=0.5, fail_mode="closed")
    try:
        started = time.monotonic()
        result = await client.check("hello")
        elapsed = time.monotonic() - started
    finally:
        await client.aclose()
    assert elapsed < 15  # its 0.5 s limit, not the stand-in's 30 s silence
    assert result.flagged and "timed out" in result.error


async def test_unreachable_service_follows_the_policy():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = OpenAIModerationClient(f"http://127.0.0.1:{port}/v1", timeout_s=2.0)
    try:
        result = await client.check("hello")
    finally:
        await client.aclose()
    assert not result.flagged and "ConnectError" in result.error


def test_client_settings_are_checked():
    with pytest.raises(ValueError):
        OpenAIModerationClient("http://127.0.0.1:1/v1", fail_mode="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        OpenAIModerationClient("http://127.0.0.1:1/v1", timeout_s=0)
