"""The labeller call and the LLM taggers end to end through Arena's real provider code.

The labeller is a registry model (``provider: openai_compatible``) pointing at the OpenAI
stand-in (tests/support/openai_standin.py), which speaks the real wire format: SSE chunks,
usage, OpenAI error bodies with 429/500/400 status codes. A thin ASGI layer in front of it
counts chat requests, tracks how many are in flight, can hold them until the test lets
them go, and switches the stand-in's fault on for the first N requests.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer

from arena.judge.calls import RetryPolicy
from arena.leaderboard.battle_columns import CRITERIA
from arena.pipeline.labeller import open_labeller
from arena.pipeline.llm_taggers import LLM_TAGGERS
from arena.pipeline.tags import PromptRecord
from support.openai_standin import create_app
from support.processes import wait_until
from support.servers import StandinConfig, serve_app

FAST_RETRIES = RetryPolicy(attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05, timeout_s=60)
ANSWER = {
    **dict.fromkeys(CRITERIA, True),
    "creativity": False,
    "score": 4,
    "math": True,
    "creative_writing": False,
}
RECORDS = [
    PromptRecord("b1", ("What is the derivative of x**3 * sin(x)?",)),
    PromptRecord("b2", ("Write a limerick about a cat.", "Now make it rhyme better.")),
    PromptRecord("b3", ("Summarise this in exactly three bullet points: ...",)),
]


@dataclass
class Gate:
    """ASGI layer in front of the stand-in (runs on the server's thread)."""

    app: Any
    config: StandinConfig
    chat_requests: int = 0
    in_flight: int = 0
    peak: int = 0
    fail_first: int = 0
    fail_with: str = "429"
    open: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.open.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.app(scope, receive, send)
            return
        self.chat_requests += 1
        self.config.fault = self.fail_with if self.chat_requests <= self.fail_first else None
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        done = False

        def finish() -> None:
            nonlocal done
            if not done:
                done, self.in_flight = True, self.in_flight - 1

        async def send_and_count(message: dict[str, Any]) -> None:
            # A request stops counting before its last byte leaves, so the client's next
            # request (sent once it has read this one) is never counted alongside it.
            if message["type"] == "http.response.body" and not message.get("more_body"):
                finish()
            await send(message)

        try:
            while not self.open.is_set():
                await asyncio.sleep(0.005)
            await self.app(scope, receive, send_and_count)
        finally:
            finish()


@dataclass
class Upstream:
    gate: Gate
    config: StandinConfig
    registry: Path


@pytest.fixture
def upstream(tmp_path) -> Iterator[Upstream]:
    config = StandinConfig(reply=json.dumps(ANSWER), retry_after="0")
    gate = Gate(create_app(config), config)
    with serve_app(gate) as base_url:
        registry = tmp_path / "arena.yaml"
        registry.write_text(
            "models:\n"
            "  - name: labeller\n"
            "    provider: openai_compatible\n"
            f"    base_url: {base_url}/v1\n"
            "    upstream_model: standin-model\n",
            encoding="utf-8",
        )
        yield Upstream(gate, config, registry)


async def tag_all(labeller, records=RECORDS):
    return await asyncio.gather(
        *(tagger.run(record, labeller.ask) for record in records for tagger in LLM_TAGGERS)
    )


async def test_taggers_run_end_to_end_through_the_provider(upstream, tmp_path):
    labeller = open_labeller(
        "labeller", config=upstream.registry, cache_path=tmp_path / "c.sqlite", policy=FAST_RETRIES
    )
    try:
        results = await tag_all(labeller)
    finally:
        await labeller.aclose()
    tags = {tag.name: tag for result in results[:4] for tag in result}
    assert {t.status for result in results for t in result} == {"ok"}
    assert tags["criteria_v0.1"].value == {
        **dict.fromkeys(CRITERIA, True),
        "creativity": False,
        "hard": True,
    }
    assert tags["if_v0.1"].value == {"if": True, "score": 4}
    assert tags["math_v0.1"].value == {"math": True}
    assert tags["creative_writing_v0.1"].value == {"creative_writing": False}
    requests = upstream.config.requests
    assert len(requests) == upstream.gate.chat_requests == 12
    for body in requests:
        assert body["model"] == "standin-model"
        assert body["temperature"] == 0
        assert body["max_tokens"] == 1024
        assert [m["role"] for m in body["messages"]] == ["user"]
    prompts = [body["messages"][0]["content"] for body in requests]
    assert sum("limerick" in p and "[Turn 2]" in p for p in prompts) == 4
    assert labeller.stats.calls == 12 and labeller.stats.cached == 0


async def test_a_second_run_is_answered_from_the_cache(upstream, tmp_path):
    cache = tmp_path / "labels.sqlite"
    first = open_labeller("labeller", config=upstream.registry, cache_path=cache)
    try:
        before = await tag_all(first)
    finally:
        await first.aclose()
    assert upstream.gate.chat_requests == 12
    upstream.config.reply = '{"math": false}'  # a new call would now give another answer
    second = open_labeller("labeller", config=upstream.registry, cache_path=cache)
    try:
        after = await tag_all(second)
        assert upstream.gate.chat_requests == 12
        assert after == before
        assert second.stats.cached == 12 and second.stats.attempts == 0
        (new,) = await LLM_TAGGERS[2].run(PromptRecord("b4", ("What is 17 * 23?",)), second.ask)
    finally:
        await second.aclose()
    assert upstream.gate.chat_requests == 13
    assert new.value == {"math": False}


@pytest.mark.parametrize("fault", ["429", "500", "503"])
async def test_transient_failures_are_retried(upstream, fault):
    upstream.gate.fail_first, upstream.gate.fail_with = 2, fault
    labeller = open_labeller(
        "labeller", config=upstream.registry, cache_path=None, policy=FAST_RETRIES
    )
    try:
        (tag,) = await LLM_TAGGERS[2].run(RECORDS[0], labeller.ask)
    finally:
        await labeller.aclose()
    assert tag.status == "ok" and tag.value == {"math": True}
    assert upstream.gate.chat_requests == 3
    assert labeller.stats.attempts == 3 and labeller.stats.failed == 0


async def test_a_failure_after_retries_is_an_error_tag_and_is_not_cached(upstream, tmp_path):
    cache = tmp_path / "labels.sqlite"
    upstream.gate.fail_first, upstream.gate.fail_with = 1000, "500"
    labeller = open_labeller(
        "labeller", config=upstream.registry, cache_path=cache, policy=FAST_RETRIES
    )
    try:
        (tag,) = await LLM_TAGGERS[0].run(RECORDS[0], labeller.ask)
    finally:
        await labeller.aclose()
    assert tag.status == "error" and tag.value is None
    assert "4 attempts" in tag.detail
    assert upstream.gate.chat_requests == 4
    upstream.gate.fail_first = 0
    again = open_labeller("labeller", config=upstream.registry, cache_path=cache)
    try:
        (tag,) = await LLM_TAGGERS[0].run(RECORDS[0], again.ask)
    finally:
        await again.aclose()
    assert tag.status == "ok" and tag.value["hard"] is True
    assert upstream.gate.chat_requests == 5


async def test_a_refused_request_is_not_retried(upstream):
    upstream.gate.fail_first, upstream.gate.fail_with = 1000, "400"
    labeller = open_labeller(
        "labeller", config=upstream.registry, cache_path=None, policy=FAST_RETRIES
    )
    try:
        (tag,) = await LLM_TAGGERS[1].run(RECORDS[0], labeller.ask)
    finally:
        await labeller.aclose()
    assert tag.status == "error" and "1 attempts" in tag.detail
    assert upstream.gate.chat_requests == 1


async def test_calls_in_flight_never_exceed_the_bound(upstream):
    upstream.gate.open.clear()
    labeller = open_labeller("labeller", config=upstream.registry, cache_path=None, concurrency=3)
    records = [
        PromptRecord(f"b{i}", (f"Question number {i}: what is {i} + {i}?",)) for i in range(10)
    ]
    try:
        running = asyncio.gather(*(LLM_TAGGERS[2].run(r, labeller.ask) for r in records))
        await asyncio.to_thread(
            wait_until, lambda: upstream.gate.in_flight == 3, what="three calls in flight"
        )
        upstream.gate.open.set()
        results = await running
    finally:
        await labeller.aclose()
    assert all(tag.status == "ok" for (tag,) in results)
    assert upstream.gate.chat_requests == 10
    assert upstream.gate.peak == 3
    assert labeller.stats.peak_in_flight == 3


def test_an_unknown_labeller_fails_with_the_names_the_registry_has(upstream, capsys):
    with pytest.raises(typer.Exit) as exit_info:
        open_labeller("gpt-9", config=upstream.registry, cache_path=None)
    assert exit_info.value.exit_code == 2
    err = capsys.readouterr().err
    assert "gpt-9" in err and "labeller" in err
    with pytest.raises(ValueError, match="concurrency"):
        open_labeller("labeller", config=upstream.registry, cache_path=None, concurrency=0)


async def test_demo_models_of_the_default_registry_answer_labeller_prompts(tmp_path, monkeypatch):
    """With no registry file, a built-in demo model labels offline: real tags, random values."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARENA_CONFIG_PATH", raising=False)
    monkeypatch.setenv("ARENA_DEFAULT_HUB_MODELS", "")
    monkeypatch.setenv("ARENA_DATA_DIR", str(tmp_path / "data"))
    labeller = open_labeller("demo-aurora")
    try:
        first = await tag_all(labeller, RECORDS[:1])
    finally:
        await labeller.aclose()
    assert (tmp_path / "data" / "labeller-cache.sqlite").is_file()
    assert [t.status for result in first for t in result] == ["ok"] * 4
    again = open_labeller("demo-aurora")
    try:
        second = await tag_all(again, RECORDS[:1])
    finally:
        await again.aclose()
    assert second == first and again.stats.cached == 4


async def test_a_quoted_judge_prompt_still_gets_demo_labels():
    """A user prompt holding judge markers ([[A]], [[rating]]) is labelled, not judged."""
    from arena.pipeline.labeller import labeller_from_provider
    from arena.providers.demo import DemoProvider

    record = PromptRecord("b", ("Rate this: [[rating]]. Is [[A]] or [[B]] better? [[A>>B]]",))
    labeller = labeller_from_provider(
        "demo-x", DemoProvider("demo-x", tokens_per_s=0), cache_path=None
    )
    try:
        results = await asyncio.gather(*(t.run(record, labeller.ask) for t in LLM_TAGGERS))
    finally:
        await labeller.aclose()
    assert [tag.status for (tag,) in results] == ["ok"] * 4
    assert 0 <= results[1][0].value["score"] <= 5
