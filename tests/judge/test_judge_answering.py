"""Answer generation against an in-process fake model (the real Provider interface)."""

from __future__ import annotations

import asyncio
import json

from arena.judge.answering import DEFAULT_CATEGORY_TEMPERATURE, TemperatureTable, generate_answers
from arena.judge.benchmark_files import Question, load_answers
from arena.judge.calls import RetryPolicy
from arena.protocol import ChatCompletionRequest
from arena.providers.base import Delta, Provider, ProviderInfo

FAST = RetryPolicy(attempts=2, initial_backoff_s=0.01, max_backoff_s=0.02, timeout_s=2.0)

QUESTIONS = [
    Question(1, "writing", ("Write a haiku.", "Now a limerick.")),
    Question(2, "math", ("2+2?", "Times 3?")),
    Question(3, "stem", ("What is DNA?",)),
    Question(4, "unknown-category", ("Hello?",)),
]


class EchoModel(Provider):
    """Answers with how many messages it saw; can fail on a marked question; counts
    concurrent streams."""

    def __init__(self, fail_on: str | None = None, gauge: dict | None = None) -> None:
        self.info = ProviderInfo(kind="fake", upstream_model="echo")
        self.fail_on = fail_on
        self.requests: list[ChatCompletionRequest] = []
        self.gauge = gauge if gauge is not None else {"now": 0, "max": 0}

    async def stream_chat(self, request):
        self.requests.append(request)
        self.gauge["now"] += 1
        self.gauge["max"] = max(self.gauge["max"], self.gauge["now"])
        try:
            await asyncio.sleep(0.01)
            last = request.messages[-1].text()
            if self.fail_on and self.fail_on in last:
                from arena.errors import UpstreamError

                raise UpstreamError("model crashed")
            yield Delta(text=f"answer#{len(request.messages)} to ")
            yield Delta(text=last)
        finally:
            self.gauge["now"] -= 1


async def test_multi_turn_answers_temperatures_and_resume(tmp_path) -> None:
    gauge = {"now": 0, "max": 0}
    model_a, model_b = EchoModel(gauge=gauge), EchoModel(fail_on="DNA", gauge=gauge)
    out = tmp_path / "answers.jsonl"
    summary = await generate_answers(
        {"a": model_a, "b": model_b},
        QUESTIONS,
        out,
        concurrency=3,
        policy=FAST,
        show_progress=False,
    )
    assert (summary.written, summary.skipped, summary.failed) == (7, 0, 1)
    assert "b / 3" in summary.failures[0]
    assert gauge["max"] == 3  # the pool keeps exactly `concurrency` conversations going
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    first = next(r for r in rows if r["model_id"] == "a" and r["question_id"] == 1)
    # Turn 2 sees user, assistant (its own answer), user.
    assert first["choices"][0]["turns"] == [
        "answer#1 to Write a haiku.",
        "answer#3 to Now a limerick.",
    ]
    turn2 = next(r for r in model_a.requests if r.messages[-1].text() == "Now a limerick.")
    assert (
        turn2.messages[1].role == "assistant"
        and turn2.messages[1].text() == "answer#1 to Write a haiku."
    )
    temps = {r.messages[0].text(): r.temperature for r in model_a.requests}
    assert temps["Write a haiku."] == DEFAULT_CATEGORY_TEMPERATURE["writing"] == 0.7
    assert temps["2+2?"] == 0.0 and temps["What is DNA?"] == 0.1 and temps["Hello?"] == 0.7
    # The answers read back in the public layout.
    loaded = load_answers([out])
    assert loaded["a"]["1"].turns[1] == "answer#3 to Now a limerick."
    assert loaded["a"]["1"].completion_tokens is not None

    # Resume: only the failed one is asked again.
    model_b.fail_on = None
    again = await generate_answers(
        {"a": model_a, "b": model_b},
        QUESTIONS,
        out,
        concurrency=3,
        policy=FAST,
        show_progress=False,
    )
    assert (again.written, again.skipped, again.failed) == (1, 7, 0)
    assert len(out.read_text().splitlines()) == 8


async def test_temperature_overrides(tmp_path) -> None:
    model = EchoModel()
    table = TemperatureTable().with_overrides({"math": 0.3}, default=0.2)
    await generate_answers(
        {"m": model},
        QUESTIONS,
        tmp_path / "a.jsonl",
        temperatures=table,
        policy=FAST,
        show_progress=False,
    )
    temps = {r.messages[0].text(): r.temperature for r in model.requests}
    assert temps["2+2?"] == 0.3 and temps["Hello?"] == 0.2 and temps["Write a haiku."] == 0.7
