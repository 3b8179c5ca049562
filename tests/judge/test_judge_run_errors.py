"""What ``arena judge`` says when something is wrong: the real reason and what to do, before
any model is called where the problem is known up front. Questions: two real MT-Bench
questions (FastChat, Apache-2.0; /work/shared/data/mt_bench)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from arena.cli import app
from support.shared_data import SHARED_DATA

MT = SHARED_DATA / "mt_bench"


def invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def questions(default_registry_here: Path) -> Path:
    lines = (MT / "question.jsonl").read_text(encoding="utf-8").splitlines()[:2]
    path = default_registry_here / "q.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_args(questions: Path, *extra: str) -> list[str]:
    return ["judge", "run", "--bench", "mt-bench", "-q", str(questions), "--no-progress", *extra]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["-j", "demo-delta"], "name the models to evaluate: --models A B (this registry has "
         "demo-aurora, demo-basalt, demo-cirrus, demo-delta)"),
        (["-m", "demo-aurora", "-j", "gpt-4o"], "model(s) not in the default registry"),
        (["-m", "demo-aurora", "-j", "demo-delta", "--mode", "pairwise-all"],
         "--mode pairwise-all compares models in pairs: name two or more"),
        (["-m", "demo-aurora", "-j", "demo-delta", "--mode", "pairwise-baseline"],
         "--mode pairwise-baseline needs --baseline MODEL"),
        (["-m", "demo-aurora", "-j", "demo-delta", "--mode", "arena-hard"],
         "unknown --mode arena-hard; for mt-bench choose from single, pairwise-all, "
         "pairwise-baseline (arena-hard is --bench arena-hard)"),
        (["-m", "demo-aurora", "-j", "demo-delta", "--judge-prompts", str(MT / "question.jsonl")],
         "judge prompt lacks name, type, system_prompt, prompt_template"),
    ],
)  # fmt: skip
def test_run_refuses_before_answering(questions, extra, expected):
    code, output = invoke(run_args(questions, *extra))
    assert code == 2 and expected in output, output
    assert not (questions.parent / "arena-judge").exists()


def test_arena_hard_needs_a_baseline_and_a_prompt_of_that_shape(questions):
    args = ["judge", "run", "--bench", "arena-hard", "-q", str(questions), "-m", "demo-aurora",
            "-j", "demo-delta"]  # fmt: skip
    code, output = invoke(args)
    assert code == 2 and "pass --baseline MODEL" in output
    code, output = invoke(
        [*args, "--baseline", "demo-cirrus", "--judge-prompts", str(MT / "judge_prompts.jsonl")]
    )
    assert code == 2
    assert (
        f"the judge-prompt file {MT / 'judge_prompts.jsonl'} has no prompt for arena-hard" in output
    )
    assert "leave out --judge-prompts" in output
    assert not (questions.parent / "arena-judge").exists()


def test_a_missing_question_file_and_a_bad_registry(questions):
    code, output = invoke(
        run_args(questions.with_name("nope.jsonl"), "-m", "demo-aurora", "-j", "demo-delta")
    )
    assert code == 2 and "cannot read" in output and "nope.jsonl" in output
    assert "--questions takes a question JSONL path or URL" in output
    bad = questions.with_name("bad.yaml")
    bad.write_text(yaml.safe_dump({"models": [{"name": "x"}]}), encoding="utf-8")
    code, output = invoke(run_args(questions, "-m", "x", "-j", "x", "-c", str(bad)))
    assert code == 2 and "models[0] (x).provider: Field required" in output
    assert "fix the registry file" in output


def test_a_model_only_workers_serve_is_refused_with_the_way_to_reach_it(questions):
    config = questions.with_name("workers.yaml")
    models = [{"name": "w", "provider": "workers"}, {"name": "d", "provider": "demo"}]
    config.write_text(yaml.safe_dump({"models": models}), encoding="utf-8")
    code, output = invoke(run_args(questions, "-m", "d", "-j", "w", "-c", str(config)))
    assert code == 2 and "model(s) w are served by registered workers" in output
    assert "provider: openai_compatible, base_url: http://HOST:8000/v1" in output
    assert not (questions.parent / "arena-judge").exists()


def test_grade_without_judge_prompts_uses_the_shipped_ones(questions):
    answers = questions.with_name("a.jsonl")
    code, output = invoke(["judge", "answer", "-q", str(questions), "-m", "demo-aurora",
                           "-o", str(answers), "--max-tokens", "8", "--no-progress"])  # fmt: skip
    assert code == 0, output
    out = questions.with_name("single.jsonl")
    code, output = invoke(["judge", "grade", "-q", str(questions), "-a", str(answers),
                           "-j", "demo-delta", "-o", str(out), "--no-progress"])  # fmt: skip
    assert code == 0, output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert {r["judge"][1] for r in rows} == {"arena-single", "arena-single-multi-turn"}


def test_failed_and_unparsable_verdicts_are_explained(questions, judge_standin, reply):
    config = questions.with_name("arena.yaml")
    models = [
        {"name": "demo-aurora", "provider": "demo"},
        {
            "name": "judge-1",
            "provider": "openai_compatible",
            "base_url": f"{judge_standin.base_url}/v1",
        },
    ]
    config.write_text(yaml.safe_dump({"models": models}), encoding="utf-8")  # ./arena.yaml
    answers = questions.with_name("a.jsonl")
    code, output = invoke(["judge", "answer", "-q", str(questions), "-m", "demo-aurora",
                           "-o", str(answers), "--max-tokens", "8", "--no-progress"])  # fmt: skip
    assert code == 0, output

    judge_standin.script = lambda body: reply(status=500)
    out = questions.with_name("failed.jsonl")
    grade = ["judge", "grade", "-q", str(questions), "-a", str(answers), "-j", "judge-1",
             "--retries", "1", "--parse-retries", "0", "--no-progress"]  # fmt: skip
    code, output = invoke([*grade, "-o", str(out)])
    assert code == 0, output
    assert "4 judge calls failed" in output and "rerun the same command" in output
    assert "First errors: UpstreamError" in output and "500" in output
    code, output = invoke(["judge", "show", "-i", str(out)])
    assert code == 0 and "MT-Bench: none of 4 judgments has a score" in output
    assert "The judge gave no usable verdict" in output

    judge_standin.script = lambda body: "I would rather not say."
    code, output = invoke([*grade, "-o", str(questions.with_name("unparsable.jsonl"))])
    assert code == 0, output
    assert "4 verdicts were unparsable" in output and "[[rating]]" in output
    assert "'judgment' fields" in output
