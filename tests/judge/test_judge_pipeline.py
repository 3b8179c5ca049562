"""The whole answer -> grade -> show pipeline through the ``arena judge`` CLI.

Answers come from a tiny random-weight Llama run by the real ``local`` provider; judges are
a real HTTP server on loopback speaking the OpenAI chat-completions format (used through
the real ``openai_compatible`` provider), scripted per prompt to give verdicts, HTTP 500s,
hangs past the timeout and unparsable answers. The judge prompts are MT-Bench's
(FastChat, fastchat/llm_judge/data, Apache-2.0; /work/shared/data/mt_bench).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from arena.cli import app
from support.shared_data import SHARED_DATA

pytestmark = pytest.mark.local

MT_PROMPTS = SHARED_DATA / "mt_bench/judge_prompts.jsonl"

QUESTIONS = [
    {
        "question_id": 1,
        "category": "writing",
        "turns": ["Write about the sea (q1).", "Shorter (q1b)."],
    },
    {
        "question_id": 2,
        "category": "math",
        "turns": ["What is two plus three (q2)?", "And two plus four (q2b)?"],
        "reference": ["Five.", "Six."],
    },
    {"question_id": 3, "category": "stem", "turns": ["Why is rain wet (q3)?", "More (q3b)."]},
    {
        "question_id": 4,
        "category": "coding",
        "turns": ["Print hi in Python (q4).", "Now in C (q4b)."],
        "reference": ["print('hi')", 'puts("hi");'],
    },
]

GRADED_PROMPT = {
    "name": "graded-test",
    "type": "pairwise",
    "system_prompt": "Judge A against B. End with [[A>>B]], [[A>B]], [[A=B]], [[B>A]] or [[B>>A]].",
    "prompt_template": "<|User Prompt|>\n{question_1}\n\n<|A|>\n{answer_1}\n<|/A|>\n\n"
    "<|B|>\n{answer_2}\n<|/B|>",
    "output_format": "[[A>>B]]",
}


def _user(body: dict) -> str:
    return body["messages"][-1]["content"]


def single_script(reply, attempts: Counter, lock: threading.Lock):
    def script(body: dict):
        text = _user(body)
        with lock:
            attempts[text] += 1
            n = attempts[text]
        if "(q1b)" in text:
            return reply(status=500) if n == 1 else "Fine. Rating: [[6]]"  # retried, then ok
        if "(q2b)" in text:
            return "I cannot decide on a number."  # unparsable, every sample
        if "(q3b)" in text:
            return "Rating: [[5]]"
        if "(q4b)" in text:
            return reply(text="Rating: [[9]]", delay_s=60)  # far past the 5 s timeout
        if "(q1)" in text:
            return "**Rating: [[7]]**"
        if "(q2)" in text:
            return "Correct. Rating: [[9]]"
        if "(q3)" in text:
            return reply(status=500)  # judge down for this one, every attempt
        if "(q4)" in text:
            return "Rating: [[8]]"
        raise AssertionError(text)

    return script


def graded_script(body: dict):
    text = _user(body)
    if "(q1)" in text:
        return "[[B>A]]" if text.index("(q1)") >= 0 and "<|A|>\nBASE" in text else "[[A>B]]"
    return "[[A=B]]"


def _registry(tmp_path: Path, model_path: Path, judge_url: str) -> Path:
    doc = {
        "models": [
            {"name": "tiny-a", "provider": "local", "model_path": str(model_path), "device": "cpu"},
            {"name": "tiny-b", "provider": "local", "model_path": str(model_path), "device": "cpu"},
            {
                "name": "judge-1",
                "provider": "openai_compatible",
                "base_url": judge_url + "/v1",
                "upstream_model": "judge-1",
            },
            {
                "name": "judge-2",
                "provider": "openai_compatible",
                "base_url": judge_url + "/v1",
                "upstream_model": "judge-2",
            },
        ]
    }
    path = tmp_path / "arena.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result


def test_answer_grade_show(tmp_path, tiny_model_path, judge_standin, reply):
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n")
    config = _registry(tmp_path, tiny_model_path, judge_standin.base_url)
    answers = tmp_path / "answers.jsonl"

    # --- answer: two models, multi-turn, per-category temperature, resumable
    result = invoke(
        "judge", "answer", "-q", questions, "-c", config, "-m", "tiny-a", "-m", "tiny-b",
        "-o", answers, "--max-tokens", "8", "--no-progress", "--concurrency", "4",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _rows(answers)
    assert len(rows) == 8
    assert {(r["model_id"], r["question_id"]) for r in rows} == {
        (m, q) for m in ("tiny-a", "tiny-b") for q in (1, 2, 3, 4)
    }
    for r in rows:
        assert len(r["choices"][0]["turns"]) == 2
        assert all(isinstance(t, str) for t in r["choices"][0]["turns"])
        assert all(0 < n <= 8 for n in r["completion_tokens"])
        # Turn 2 was asked with turn 1 in context: a longer prompt.
        assert r["prompt_tokens"][1] > r["prompt_tokens"][0]
    temps = {r["question_id"]: r["params"]["temperature"] for r in rows}
    assert temps == {1: 0.7, 2: 0.0, 3: 0.1, 4: 0.0}
    result = invoke(
        "judge", "answer", "-q", questions, "-c", config, "-m", "tiny-a", "-m", "tiny-b",
        "-o", answers, "--max-tokens", "8", "--no-progress",
    )  # fmt: skip
    assert "wrote 0 answers" in result.output and "8 already there" in result.output
    assert len(_rows(answers)) == 8

    # --- grade (single): a 500 that recovers, a 500 that does not, a timeout, garbage
    attempts: Counter = Counter()
    judge_standin.script = single_script(reply, attempts, threading.Lock())
    judgments = tmp_path / "single.jsonl"
    result = invoke(
        "judge", "grade", "--mode", "single", "-q", questions, "-a", answers,
        "--judge-prompts", MT_PROMPTS, "-j", "judge-1", "-c", config, "-o", judgments,
        "--timeout", "5", "--retries", "2", "--backoff", "0.01", "--parse-retries", "1",
        "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _rows(judgments)
    assert len(rows) == 16
    by = {(r["model"], r["question_id"], r["turn"]): r for r in rows}
    for model in ("tiny-a", "tiny-b"):
        assert by[(model, 1, 2)]["status"] == "ok" and by[(model, 1, 2)]["attempts"] == 2
        assert (
            by[(model, 3, 1)]["status"] == "error" and "UpstreamError" in by[(model, 3, 1)]["error"]
        )
        assert by[(model, 4, 2)]["status"] == "error" and "timeout" in by[(model, 4, 2)]["error"]
        assert by[(model, 2, 2)]["status"] == "unparsable" and by[(model, 2, 2)]["samples"] == 2
        assert by[(model, 2, 1)]["judge"] == ["judge-1", "single-math-v1"]
        assert "Five." in by[(model, 2, 1)]["user_prompt"]  # reference-guided
    # Every judge request carried the judge params through the real provider.
    assert all(b["temperature"] == 0.0 and b["stream"] for b in judge_standin.requests)

    # --- show: MT-Bench table, radar plot, tokens and cost
    prices = tmp_path / "prices.yaml"
    prices.write_text(yaml.safe_dump({"judge-1": {"input": 10.0, "output": 30.0}}))
    out_json = tmp_path / "report.json"
    plot = tmp_path / "radar.png"
    result = invoke(
        "judge", "show", "-i", judgments, "--plot", plot, "--prices", prices, "--json", out_json
    )
    assert result.exit_code == 0, result.output
    assert "MT-Bench" in result.output and "judge-1" in result.output
    report = json.loads(out_json.read_text())
    for m in report["mt_bench"]["models"]:
        # turn 1: q1 7, q2 9, q4 8 (q3 failed); turn 2: q1 6, q3 5 (q2 unparsable, q4 timeout)
        assert m["turn_scores"] == {"1": 8.0, "2": 5.5}
        assert m["overall"] == pytest.approx(7.0)
        assert m["categories"] == {"writing": 6.5, "math": 9.0, "stem": 5.0, "coding": 8.0}
    assert report["mt_bench"]["excluded"] == 6
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (cost,) = report["costs"]
    ok_rows = [r for r in rows if r["usage"]["prompt_tokens"]]
    prompt_tokens = sum(r["usage"]["prompt_tokens"] for r in rows)
    completion_tokens = sum(r["usage"]["completion_tokens"] for r in rows)
    assert ok_rows and cost["prompt_tokens"] == prompt_tokens
    assert cost["cost"] == pytest.approx((prompt_tokens * 10 + completion_tokens * 30) / 1e6)

    # --- arena-hard against a baseline, five verdict levels, both orders
    graded_prompts = tmp_path / "graded.jsonl"
    graded_prompts.write_text(json.dumps(GRADED_PROMPT) + "\n")

    def arena_script(body: dict):
        text = _user(body)
        a = text.split("<|A|>\n", 1)[1].split("\n<|/A|>", 1)[0]
        if "(q1)" in text:
            return (
                "[[B>A]]" if body["model"] == "judge-1" and a == by_answer["tiny-b"] else "[[A>B]]"
            )
        if "(q2)" in text:
            return "[[A>>B]]"  # position bias: cancels out across the two orders
        if "(q3)" in text:
            return "no verdict"
        return "[[A=B]]"

    answer_rows = _rows(answers)
    by_answer = {
        r["model_id"]: r["choices"][0]["turns"][0] for r in answer_rows if r["question_id"] == 1
    }
    judge_standin.script = arena_script
    ah = tmp_path / "arena-hard.jsonl"
    result = invoke(
        "judge", "grade", "--mode", "arena-hard", "-q", questions, "-a", answers,
        "--judge-prompts", graded_prompts, "-j", "judge-1", "-c", config, "-o", ah,
        "-m", "tiny-a", "--baseline", "tiny-b", "--parse-retries", "0", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (q1,) = [r for r in _rows(ah) if r["question_id"] == 1]
    games = [g["score"] for g in q1["games"]]
    # Game 1 shows the baseline (tiny-b) as A; the script prefers B there when A is tiny-b's
    # answer, and A in game 2, so tiny-a wins both (unless both answers are identical).
    if by_answer["tiny-a"] != by_answer["tiny-b"]:
        assert games == ["B>A", "A>B"]
    out_json = tmp_path / "ah.json"
    result = invoke("judge", "show", "-i", ah, "--rounds", "20", "--json", out_json)
    assert result.exit_code == 0, result.output
    scores = {r["model"]: r for r in json.loads(out_json.read_text())["arena_hard"]["rows"]}
    # Battles: q1 two tiny-a wins (weight 1), q2 one strong win each way (weight 3 each),
    # q3 none (unparsable), q4 two ties. tiny-a's share: (2 + 3 + 1) / (2 + 6 + 2) = 60%.
    # With every battle against the baseline the BT fit reproduces that share exactly.
    expected = 60.0 if by_answer["tiny-a"] != by_answer["tiny-b"] else 40.0
    assert scores["tiny-a"]["score"] == pytest.approx(expected, abs=0.01)
    assert scores["tiny-b"]["score"] == pytest.approx(50.0)
    assert scores["tiny-a"]["lower"] <= scores["tiny-a"]["score"] <= scores["tiny-a"]["upper"]
