"""The judge prompts Arena ships: one per slot the grader needs, asking for the verdict
formats the parser reads, filled in for every grading mode, packaged with the wheel, and
chosen only when no judge-prompt file is given. MT-Bench's judge prompts (FastChat,
Apache-2.0; /work/shared/data/mt_bench) serve as the user-supplied file."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

import arena
from arena.errors import BadRequest
from arena.judge.benchmark_files import ModelAnswer, Question, load_judge_prompts
from arena.judge.calls import JudgeCaller
from arena.judge.grading import Grader, Mode, plan_tasks
from arena.judge.prompts import (
    SHIPPED_PROMPTS_NAME,
    PromptBook,
    load_prompt_file,
    prompt_scale,
    shipped_prompts_path,
)
from arena.judge.verdicts import GRADED_LEVELS, Scale, parse_verdict
from support.shared_data import SHARED_DATA

ROOT = Path(__file__).resolve().parents[2]
MT_PROMPTS = SHARED_DATA / "mt_bench/judge_prompts.jsonl"

SLOTS = {
    (Scale.RATING, False, False): "arena-single",
    (Scale.RATING, True, False): "arena-single-multi-turn",
    (Scale.RATING, False, True): "arena-single-reference",
    (Scale.RATING, True, True): "arena-single-reference-multi-turn",
    (Scale.PAIR, False, False): "arena-pair",
    (Scale.PAIR, True, False): "arena-pair-multi-turn",
    (Scale.PAIR, False, True): "arena-pair-reference",
    (Scale.PAIR, True, True): "arena-pair-reference-multi-turn",
    (Scale.GRADED_PAIR, False, False): "arena-graded-pair",
}


def shipped_book(names=()):
    prompts, source = load_prompt_file(None)
    return PromptBook(prompts, names, source=source)


def test_no_file_means_the_shipped_prompts_one_for_every_slot():
    prompts, source = load_prompt_file(None)
    assert source == SHIPPED_PROMPTS_NAME
    assert sorted(p.name for p in prompts) == sorted(SLOTS.values())
    book = shipped_book()
    for (scale, multi_turn, reference), name in SLOTS.items():
        assert book.choose(scale, multi_turn=multi_turn, reference=reference).name == name


@pytest.mark.parametrize("name", sorted(SLOTS.values()))
def test_each_prompt_asks_for_a_verdict_the_parser_reads(name):
    prompt = next(p for p in load_prompt_file(None)[0] if p.name == name)
    text = f"{prompt.system_prompt}\n{prompt.prompt_template}"
    scale = prompt_scale(prompt)
    options = {
        Scale.RATING: ["[[rating]]"],
        Scale.PAIR: ["[[A]]", "[[B]]", "[[C]]"],
        Scale.GRADED_PAIR: [f"[[{level}]]" for level in GRADED_LEVELS],
    }[scale]
    assert all(option in text for option in options)
    # The example verdict the prompt shows is one the parser accepts.
    assert parse_verdict(scale, text) is not None


def test_the_shipped_file_is_package_data():
    path = shipped_prompts_path()
    assert path.is_file()
    relative = path.relative_to(Path(arena.__file__).parent).as_posix()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["arena"]
    assert any(fnmatch.fnmatch(relative, g) for g in globs), (relative, globs)


def test_the_wording_is_not_mt_benchs():
    ours = " ".join(f"{p.system_prompt} {p.prompt_template}" for p in load_prompt_file(None)[0])
    ours = " ".join(ours.lower().split())
    theirs = " ".join(
        f"{p.system_prompt} {p.prompt_template}" for p in load_judge_prompts(MT_PROMPTS)
    )
    phrases = {
        " ".join(words[i : i + 6])
        for sentence in re.split(r"[.:\n]", theirs.lower())
        if len(words := sentence.split()) >= 6
        for i in range(len(words) - 5)
    }
    shared = sorted(p for p in phrases if p in ours)
    assert not shared, shared[:5]


QUESTIONS = [
    Question(1, "writing", ("Write about the sea (q1).", "Shorter now (q1b).")),
    Question(2, "math", ("Two plus three (q2)?", "Two plus four (q2b)?"), ("Five.", "Six.")),
]
ANSWERS = {
    model: {
        str(q.question_id): ModelAnswer(
            q.question_id, model, tuple(f"{model} says {t}" for t in q.turns)
        )
        for q in QUESTIONS
    }
    for model in ("m1", "m2")
}


@pytest.mark.parametrize("mode", list(Mode))
async def test_the_prompts_fill_in_for_every_mode(mode, fake_provider):
    """Every task of every mode renders (no missing field) and the judge sees the question,
    the answers it compares and, for reference-graded categories, the reference."""
    seen: list[str] = []

    def script(messages):
        seen.append("\n".join(m["content"] for m in messages))
        return {Mode.SINGLE: "Rating: [[6]]", Mode.ARENA_HARD: "[[A>B]]"}.get(mode, "[[B]]")

    grader = Grader(mode, shipped_book(), ANSWERS)
    baseline = "m2" if mode in (Mode.PAIRWISE_BASELINE, Mode.ARENA_HARD) else None
    tasks, missing = plan_tasks(mode, QUESTIONS, ANSWERS, ["m1", "m2"], baseline=baseline)
    assert missing == 0 and tasks
    caller = JudgeCaller("judge", fake_provider(script))
    for task in tasks:
        seen.clear()
        row = await grader.judge(task, caller)
        games = row.get("games") or [row]
        assert all(g.get("status", "ok") == "ok" for g in games)
        assert row.get("g1_status", "ok") == row.get("g2_status", "ok") == "ok"
        q = task.question
        for text in seen:
            assert all(turn in text for turn in q.turns[: task.turn])
            for model in task.models:
                assert ANSWERS[model][q.key].turns[task.turn - 1] in text
            if q.reference and mode is not Mode.ARENA_HARD:
                assert q.reference[task.turn - 1] in text
            assert "{" not in text  # nothing left unfilled


def test_a_given_file_is_used_and_a_missing_shape_says_what_to_do():
    prompts, source = load_prompt_file(str(MT_PROMPTS))
    assert {p.name for p in prompts} == {p.name for p in load_judge_prompts(MT_PROMPTS)}
    book = PromptBook(prompts, source=source)
    assert book.choose(Scale.RATING, multi_turn=False, reference=False).name == "single-v1"
    with pytest.raises(BadRequest) as caught:
        book.choose(Scale.GRADED_PAIR, multi_turn=False, reference=False)
    message = caught.value.message
    assert str(MT_PROMPTS) in message and "no prompt for: graded_pair" in message
    assert "leave out --judge-prompts" in message


def test_prompt_names_narrow_the_shipped_prompts():
    book = shipped_book(["arena-single"])
    assert book.choose(Scale.RATING, multi_turn=False, reference=False).name == "arena-single"
    with pytest.raises(BadRequest, match="no prompt for: rating verdict, multi-turn"):
        book.choose(Scale.RATING, multi_turn=True, reference=False)
    with pytest.raises(BadRequest, match=r"unknown judge prompt name.*arena-pair"):
        shipped_book(["nope"])
