"""Grading logic against an in-process fake judge (the real Provider interface).

Uses the real MT-Bench questions, judge prompts and reference answers (FastChat,
fastchat/llm_judge/data, Apache-2.0; /work/shared/data/mt_bench); the answers are made up
here so the judge script can decide verdicts from them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from arena.judge.benchmark_files import (
    ModelAnswer,
    attach_references,
    load_judge_prompts,
    load_questions,
    load_references,
)
from arena.judge.cache import JudgeCache
from arena.judge.calls import JudgeCaller, RetryPolicy
from arena.judge.grading import Grader, Mode, Spread, grade, plan_tasks
from arena.judge.judgments import graded_battles, load_judgments, pair_battles
from arena.judge.prompts import PromptBook
from arena.judge.scores import mt_bench_scores, pair_records
from support.shared_data import SHARED_DATA

MT = SHARED_DATA / "mt_bench"
FAST = RetryPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02, timeout_s=5.0)


def _questions():
    qs = attach_references(
        load_questions(MT / "question.jsonl"), load_references(MT / "reference_answer_gpt-4.jsonl")
    )
    by_cat = {}
    for q in qs:
        by_cat.setdefault(q.category, q)
    return [by_cat["writing"], by_cat["math"], by_cat["coding"]]


QUALITY = {"good": 9, "fair": 6, "base": 4}


def _answers(questions, models=("good", "fair", "base")):
    return {
        m: {
            q.key: ModelAnswer(
                q.question_id, m, (f"quality={QUALITY[m]} t1", f"quality={QUALITY[m]} t2")
            )
            for q in questions
        }
        for m in models
    }


def _grader(mode, answers, prompts=None, **kw):
    return Grader(
        mode, PromptBook(prompts or load_judge_prompts(MT / "judge_prompts.jsonl")), answers, **kw
    )


def _last_user(messages):
    return messages[-1]["content"]


def rating_script(messages):
    """Rates the answer being judged (the last quality=N in the prompt is the turn judged)."""
    found = re.findall(r"quality=(\d+)", _last_user(messages))
    return f"The answer is judged. Rating: [[{found[-1]}]]"


def pair_script(messages):
    """Prefers the higher quality; reads assistant A's and B's blocks."""
    text = _last_user(messages)
    a = re.search(
        r"Assistant A's (?:Answer|Conversation with User)\|?>?\]?(.*?)(?:The End of Assistant A)",
        text,
        re.S,
    )
    b = re.search(
        r"Assistant B's (?:Answer|Conversation with User)\|?>?\]?(.*?)(?:The End of Assistant B)",
        text,
        re.S,
    )
    qa = int(re.findall(r"quality=(\d+)", a.group(1))[-1])
    qb = int(re.findall(r"quality=(\d+)", b.group(1))[-1])
    return "[[A]]" if qa > qb else "[[B]]" if qb > qa else "[[C]]"


async def test_single_grading_uses_reference_prompts_and_scores(tmp_path, fake_provider):
    questions = _questions()
    answers = _answers(questions)
    grader = _grader(Mode.SINGLE, answers)
    tasks, missing = plan_tasks(Mode.SINGLE, questions, answers, ["good", "fair"])
    assert len(tasks) == 2 * 3 * 2 and missing == 0
    provider = fake_provider(rating_script)
    caller = JudgeCaller("judge-1", provider, params={"temperature": 0}, policy=FAST)
    out = tmp_path / "single.jsonl"
    summary = await grade(grader, tasks, [caller], out, concurrency=4, show_progress=False)
    assert summary.judged == 12 and summary.statuses == {"ok": 12}
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    prompts = {(r["category"], r["turn"]): r["judge"][1] for r in rows}
    assert prompts[("math", 1)] == "single-math-v1"
    assert prompts[("math", 2)] == "single-math-v1-multi-turn"
    assert prompts[("coding", 1)] == "single-math-v1"
    assert prompts[("writing", 1)] == "single-v1"
    assert prompts[("writing", 2)] == "single-v1-multi-turn"
    math2 = next(r for r in rows if r["category"] == "math" and r["turn"] == 2)
    ref = questions[1].reference
    assert ref[0] in math2["user_prompt"] and ref[1] in math2["user_prompt"]
    assert "quality=9 t1" in math2["user_prompt"] or "quality=6 t1" in math2["user_prompt"]
    assert all(r["usage"]["completion_tokens"] > 0 for r in rows)
    scores = mt_bench_scores(load_judgments([out]).single).by_model()
    assert scores["good"].overall == 9 and scores["fair"].overall == 6
    assert scores["good"].turn_scores == {1: 9.0, 2: 9.0}
    assert set(scores["good"].categories) == {"writing", "math", "coding"}
    # Resume: nothing left to do.
    again = await grade(grader, tasks, [caller], out, concurrency=4, show_progress=False)
    assert again.judged == 0 and again.skipped == 12


async def test_unparsable_verdicts_are_retried_then_recorded(tmp_path, fake_provider):
    questions = _questions()[:1]
    answers = _answers(questions, ("good",))
    calls = {"n": 0}

    def flaky(messages):
        calls["n"] += 1
        return "I think it is decent." if calls["n"] == 1 else rating_script(messages)

    grader = _grader(Mode.SINGLE, answers, parse_retries=2)
    tasks, _ = plan_tasks(Mode.SINGLE, questions, answers, ["good"])
    out = tmp_path / "j.jsonl"
    caller = JudgeCaller("j", fake_provider(flaky), policy=FAST)
    await grade(grader, tasks[:1], [caller], out, concurrency=1, show_progress=False)
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert row["status"] == "ok" and row["samples"] == 2 and row["score"] == 9

    never = JudgeCaller("never", fake_provider(lambda m: "no verdict here [[x]]"), policy=FAST)
    out2 = tmp_path / "j2.jsonl"
    await grade(grader, tasks, [never], out2, concurrency=2, show_progress=False)
    rows = [json.loads(x) for x in out2.read_text().splitlines()]
    assert {r["status"] for r in rows} == {"unparsable"}
    assert all(r["score"] == -1 and r["samples"] == 3 for r in rows)
    assert mt_bench_scores(rows).excluded == 2


async def test_judge_failures_and_timeouts_are_recorded_not_fatal(tmp_path, fake_provider, reply):
    questions = _questions()
    answers = _answers(questions, ("good",))

    def script(messages):
        text = _last_user(messages)
        if "Hawaii" in text:  # the writing question: the judge is down
            return reply(status=500)
        if "reference" in text.lower() and "t2" in text:  # math/coding turn 2: hangs
            return reply(text="Rating: [[5]]", delay_s=60)  # far past the 2 s timeout
        return rating_script(messages)

    provider = fake_provider(script)
    # A limit the healthy answers meet even on a busy machine.
    policy = RetryPolicy(attempts=2, initial_backoff_s=0.01, max_backoff_s=0.02, timeout_s=2.0)
    caller = JudgeCaller("j", provider, policy=policy)
    grader = _grader(Mode.SINGLE, answers)
    tasks, _ = plan_tasks(Mode.SINGLE, questions, answers, ["good"])
    out = tmp_path / "j.jsonl"
    summary = await grade(grader, tasks, [caller], out, concurrency=3, show_progress=False)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert summary.statuses == {"error": 4, "ok": 2}
    errors = [r for r in rows if r["status"] == "error"]
    assert all(r["score"] == -1 and r["attempts"] == 2 for r in errors)
    assert sum("UpstreamError" in r["error"] for r in errors) == 2
    assert sum("timeout" in r["error"] for r in errors) == 2
    # A rerun judges only the failed tasks again; the newer rows win when read back.
    provider.script = rating_script
    again = await grade(grader, tasks, [caller], out, concurrency=3, show_progress=False)
    assert again.judged == 4 and again.skipped == 2 and again.statuses == {"ok": 4}
    latest = load_judgments([out]).single
    assert len(latest) == 6 and {r["status"] for r in latest} == {"ok"}


async def test_cache_answers_repeated_calls(tmp_path, fake_provider):
    questions = _questions()
    answers = _answers(questions, ("good",))
    cache = JudgeCache(tmp_path / "cache.sqlite")
    provider = fake_provider(rating_script)
    caller = JudgeCaller("j", provider, params={"temperature": 0}, cache=cache, policy=FAST)
    grader = _grader(Mode.SINGLE, answers)
    tasks, _ = plan_tasks(Mode.SINGLE, questions, answers, ["good"])
    await grade(grader, tasks, [caller], tmp_path / "a.jsonl", show_progress=False)
    assert len(provider.requests) == 6 and len(cache) == 6
    await grade(grader, tasks, [caller], tmp_path / "b.jsonl", show_progress=False)
    assert len(provider.requests) == 6  # all from the cache
    rows = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert all(r["cached"] and r["status"] == "ok" for r in rows)
    # Other parameters are another key.
    other = JudgeCaller("j", provider, params={"temperature": 0.5}, cache=cache, policy=FAST)
    await grade(grader, tasks[:1], [other], tmp_path / "c.jsonl", show_progress=False)
    assert len(provider.requests) == 7
    cache.close()


async def test_pairwise_baseline_both_orders_and_position_bias(tmp_path, fake_provider):
    questions = _questions()
    answers = _answers(questions)
    grader = _grader(Mode.PAIRWISE_BASELINE, answers)
    tasks, _ = plan_tasks(
        Mode.PAIRWISE_BASELINE, questions, answers, ["good", "fair"], baseline="base"
    )
    assert len(tasks) == 2 * 3 * 2
    fair_judge = JudgeCaller("fair", fake_provider(pair_script), policy=FAST)
    out = tmp_path / "pair.jsonl"
    await grade(grader, tasks, [fair_judge], out, show_progress=False)
    rows = load_judgments([out]).pair
    assert all(r["g1_winner"] == r["g2_winner"] == "model_1" for r in rows)
    prompts = {r["judge"][1] for r in rows}
    assert prompts == {"pair-v2", "pair-v2-multi-turn", "pair-math-v1", "pair-math-v1-multi-turn"}
    records = {r.model: r for r in pair_records(pair_battles(rows)[0], against="base")}
    assert records["good"].wins == 6 and records["fair"].wins == 6
    # A judge that always says A contradicts itself across orders: every pair is a tie.
    biased = JudgeCaller("biased", fake_provider(lambda m: "[[A]]"), policy=FAST)
    out2 = tmp_path / "biased.jsonl"
    await grade(grader, tasks, [biased], out2, show_progress=False)
    rows2 = load_judgments([out2]).pair
    assert {(r["g1_winner"], r["g2_winner"], r["winner"]) for r in rows2} == {
        ("model_1", "model_2", "tie")
    }


async def test_pairwise_all_covers_every_pair(tmp_path, fake_provider):
    questions = _questions()[:1]
    answers = _answers(questions)
    tasks, _ = plan_tasks(Mode.PAIRWISE_ALL, questions, answers, ["good", "fair", "base"])
    assert {t.models for t in tasks} == {("good", "fair"), ("good", "base"), ("fair", "base")}
    out = tmp_path / "all.jsonl"
    caller = JudgeCaller("j", fake_provider(pair_script), policy=FAST)
    await grade(_grader(Mode.PAIRWISE_ALL, answers), tasks, [caller], out, show_progress=False)
    records = {r.model: r for r in pair_records(pair_battles(load_judgments([out]).pair)[0])}
    assert (records["good"].wins, records["fair"].wins, records["base"].wins) == (4, 2, 0)


def graded_script(messages):
    text = _last_user(messages)
    qa = int(re.search(r"Assistant A's Answer\|>\n.*?quality=(\d+)", text, re.S).group(1))
    qb = int(re.search(r"Assistant B's Answer\|>\n.*?quality=(\d+)", text, re.S).group(1))
    gap = qa - qb
    level = (
        "A>>B"
        if gap >= 5
        else "A>B"
        if gap > 0
        else "A=B"
        if gap == 0
        else "B>A"
        if gap > -5
        else "B>>A"
    )
    return f"Judgment... My final verdict is [[{level}]]"


async def test_arena_hard_mode_games_and_weights(tmp_path, fake_provider, graded_prompt):
    prompts_file = tmp_path / "prompts.jsonl"
    prompts_file.write_text(json.dumps(graded_prompt) + "\n")
    questions = _questions()
    answers = _answers(questions)
    answers["great"] = {
        q.key: ModelAnswer(q.question_id, "great", ("quality=10 t1", "")) for q in questions
    }
    grader = _grader(Mode.ARENA_HARD, answers, load_judge_prompts(prompts_file))
    tasks, _ = plan_tasks(Mode.ARENA_HARD, questions, answers, ["good", "great"], baseline="base")
    assert len(tasks) == 2 * 3 and all(t.turn == 1 for t in tasks)
    out = tmp_path / "ah.jsonl"
    await grade(
        grader,
        tasks,
        [JudgeCaller("j", fake_provider(graded_script), policy=FAST)],
        out,
        show_progress=False,
    )
    rows = load_judgments([out]).graded
    good = next(r for r in rows if r["model"] == "good")
    # Game 1 shows the baseline as A (quality 4 vs 9), game 2 the model as A.
    assert [g["score"] for g in good["games"]] == ["B>>A", "A>>B"]
    great = next(r for r in rows if r["model"] == "great")
    assert [g["score"] for g in great["games"]] == ["B>>A", "A>>B"]
    columns, skipped = graded_battles(rows)
    assert skipped == 0 and len(columns) == 12
    assert set(columns.weights.tolist()) == {3.0}
    assert set(columns.model_a[::2]) == {"base"}  # game 1 rows


async def test_round_robin_and_each(tmp_path, fake_provider):
    questions = _questions()
    answers = _answers(questions, ("good",))
    grader = _grader(Mode.SINGLE, answers)
    tasks, _ = plan_tasks(Mode.SINGLE, questions, answers, ["good"])
    p1, p2 = fake_provider(rating_script), fake_provider(rating_script)
    c1, c2 = JudgeCaller("j1", p1, policy=FAST), JudgeCaller("j2", p2, policy=FAST)
    out = tmp_path / "rr.jsonl"
    summary = await grade(
        grader, tasks, [c1, c2], out, spread=Spread.ROUND_ROBIN, show_progress=False
    )
    assert summary.outputs == (str(out),)
    assert len(p1.requests) == 3 and len(p2.requests) == 3
    out2 = tmp_path / "each.jsonl"
    summary = await grade(grader, tasks, [c1, c2], out2, spread=Spread.EACH, show_progress=False)
    assert sorted(Path(p).name for p in summary.outputs) == ["each.j1.jsonl", "each.j2.jsonl"]
    for name in ("j1", "j2"):
        rows = [json.loads(x) for x in (tmp_path / f"each.{name}.jsonl").read_text().splitlines()]
        assert len(rows) == 6 and {r["judge"][0] for r in rows} == {name}


def test_missing_prompt_or_answers_fail_before_any_call(fake_provider):
    questions = _questions()
    answers = _answers(questions)
    from arena.errors import BadRequest

    with pytest.raises(BadRequest, match="needs --baseline"):
        plan_tasks(Mode.ARENA_HARD, questions, answers, ["good"])
    with pytest.raises(BadRequest, match="no answers for nobody"):
        plan_tasks(Mode.SINGLE, questions, answers, ["nobody"])
    grader = _grader(Mode.ARENA_HARD, answers)
    tasks, _ = plan_tasks(Mode.ARENA_HARD, questions, answers, ["good"], baseline="base")
    with pytest.raises(BadRequest, match="no prompt for: graded_pair"):
        grader.check_prompts(tasks)


def test_backoff_honours_retry_after() -> None:
    from types import SimpleNamespace

    from arena.errors import RateLimited, UpstreamError
    from arena.judge.calls import is_transient, retrying

    policy = RetryPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=5.0)
    wait = retrying(policy).wait

    def state(error):
        return SimpleNamespace(attempt_number=1, outcome=SimpleNamespace(exception=lambda: error))

    assert wait(state(RateLimited("slow down", retry_after_s=3.0))) >= 3.0
    assert wait(state(RateLimited("slow down", retry_after_s=60.0))) <= 5.0 + 0.01
    assert wait(state(UpstreamError("boom"))) < 0.1
    from arena.errors import BadRequest, ContextLengthExceeded

    assert is_transient(UpstreamError("x")) and is_transient(TimeoutError())
    assert not is_transient(BadRequest("x")) and not is_transient(ContextLengthExceeded("x"))
