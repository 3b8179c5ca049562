"""The offline walkthrough of docs/judge.md, run as written.

Demo models from the default registry (no --config, as ``arena serve`` without one) answer
a few real MT-Bench questions (FastChat, fastchat/llm_judge/data, Apache-2.0) and Arena-Hard
prompts (arena-hard-auto, data/arena-hard-v0.1, Apache-2.0), both from /work/shared/data; a
demo model judges them with the judge prompts Arena ships, and ``arena judge show`` prints
tables whose numbers are the means of the judgments on disk.
"""

from __future__ import annotations

import json
import re
from itertools import product
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from arena.cli import app
from arena.judge.verdicts import GRADED_LEVELS
from arena.providers.registry import parse_registry
from support.shared_data import SHARED_DATA

MT_QUESTIONS = SHARED_DATA / "mt_bench/question.jsonl"
AH_QUESTIONS = SHARED_DATA / "arena_hard_v0.1/question.jsonl"
DOC = Path(__file__).resolve().parents[2] / "docs/judge.md"
MODELS = ["demo-aurora", "demo-basalt"]
JUDGE = "demo-delta"


def invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def table_row(output: str, model: str) -> list[str]:
    """The cells of the first table row that names ``model``."""
    line = next(line for line in output.splitlines() if re.search(rf"[│|]\s*{model}\s", line))
    return [cell.strip() for cell in re.split(r"[│|]", line) if cell.strip()]


def copy_mt_questions(folder: Path) -> tuple[Path, list[dict]]:
    """The first question of writing, math and reasoning (the last two with references)."""
    rows = read_rows(MT_QUESTIONS)
    picked = [next(r for r in rows if r["category"] == c) for c in ("writing", "math", "reasoning")]
    assert [bool(r.get("reference")) for r in picked] == [False, True, True]
    path = folder / "mt-questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in picked), encoding="utf-8")
    return path, picked


def test_mt_bench_single_and_pairwise_offline(default_registry_here):
    questions, picked = copy_mt_questions(default_registry_here)
    args = [
        "judge", "run", "--models", *MODELS, "--bench", "mt-bench",
        "--questions", str(questions), "--judge", JUDGE,
        "--mode", "single", "--mode", "pairwise-all", "--max-tokens", "24", "--no-progress",
    ]  # fmt: skip
    result = invoke(args)
    assert result.exit_code == 0, result.output
    run = default_registry_here / "arena-judge" / "mt-bench"
    ids = [q["question_id"] for q in picked]

    answers = read_rows(run / "answers.jsonl")
    assert sorted((a["model_id"], a["question_id"]) for a in answers) == sorted(
        product(MODELS, ids)
    )
    assert all(
        len(a["choices"][0]["turns"]) == 2 and all(a["choices"][0]["turns"]) for a in answers
    )

    single = read_rows(run / "judgments-single.jsonl")
    assert len(single) == len(MODELS) * len(ids) * 2
    assert {r["status"] for r in single} == {"ok"}
    assert all(r["score"] in range(1, 11) for r in single)
    used = {(r["category"], r["turn"]): r["judge"][1] for r in single}
    assert used == {
        ("writing", 1): "arena-single",
        ("writing", 2): "arena-single-multi-turn",
        ("math", 1): "arena-single-reference",
        ("math", 2): "arena-single-reference-multi-turn",
        ("reasoning", 1): "arena-single-reference",
        ("reasoning", 2): "arena-single-reference-multi-turn",
    }
    assert len({r["score"] for r in single}) > 1  # varied verdicts, not one constant

    pairs = read_rows(run / "judgments-pairwise-all.jsonl")
    assert len(pairs) == len(ids) * 2  # one pair of models, every question and turn
    assert {r["g1_status"] for r in pairs} == {r["g2_status"] for r in pairs} == {"ok"}
    assert {r["winner"] for r in pairs} <= {"model_1", "model_2", "tie"}
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    assert {m["model"] for m in report["mt_bench"]["models"]} == set(MODELS)

    show = invoke(
        ["judge", "show", "-i", str(run / "judgments-single.jsonl"),
         "-i", str(run / "judgments-pairwise-all.jsonl"), "-q", str(questions)]
    )  # fmt: skip
    assert show.exit_code == 0, show.output
    assert "MT-Bench (single grading)" in show.output and "Pairwise" in show.output
    for model in MODELS:
        mine = [r for r in single if r["model"] == model]
        turn1 = np.mean([r["score"] for r in mine if r["turn"] == 1])
        turn2 = np.mean([r["score"] for r in mine if r["turn"] == 2])
        overall = np.mean([r["score"] for r in mine])
        expected = [model, f"{turn1:.2f}", f"{turn2:.2f}", f"{overall:.2f}", str(len(mine))]
        assert table_row(show.output, model) == expected

    again = invoke(args)
    assert again.exit_code == 0, again.output
    assert "wrote 0 answers" in again.output and f"{len(ids) * 2} already there" in again.output
    assert again.output.count("judged 0 tasks") == 2


def test_arena_hard_offline(default_registry_here):
    prompts = read_rows(AH_QUESTIONS)[:4]
    questions = default_registry_here / "ah-questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in prompts), encoding="utf-8")
    out = default_registry_here / "ah-run"
    result = invoke(
        ["judge", "run", "--models", *MODELS, "--bench", "arena-hard", "-q", str(questions),
         "--judge", JUDGE, "--baseline", "demo-cirrus", "-o", str(out), "--max-tokens", "24",
         "--no-progress"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    answered = {a["model_id"] for a in read_rows(out / "answers.jsonl")}
    assert answered == {*MODELS, "demo-cirrus"}  # the baseline is answered too

    rows = read_rows(out / "judgments-arena-hard.jsonl")
    assert sorted((r["model"], r["question_id"]) for r in rows) == sorted(
        product(MODELS, [p["uid"] for p in prompts])
    )
    assert {r["baseline"] for r in rows} == {"demo-cirrus"}
    assert {r["prompt_name"] for r in rows} == {"arena-graded-pair"}
    assert all(len(r["games"]) == 2 for r in rows)
    assert {g["score"] for r in rows for g in r["games"]} <= set(GRADED_LEVELS)

    assert "Win rate against demo-cirrus" in result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    scores = {r["model"]: r for r in report["arena_hard"]["rows"]}
    assert set(scores) == {*MODELS, "demo-cirrus"}
    assert scores["demo-cirrus"]["score"] == pytest.approx(50.0)
    for model in MODELS:
        assert table_row(result.output, model)[1] == f"{scores[model]['score']:.1f}"
        assert scores[model]["n_battles"] == 2 * len(prompts)


def test_answer_without_config_uses_the_default_models(default_registry_here):
    questions, _ = copy_mt_questions(default_registry_here)
    result = invoke(
        ["judge", "answer", "-q", str(questions), "-m", "demo-aurora", "-o", "a.jsonl",
         "--limit", "1", "--max-tokens", "8", "--no-progress"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "wrote 1 answers" in result.output
    assert read_rows(default_registry_here / "a.jsonl")[0]["model_id"] == "demo-aurora"


def test_an_unknown_model_lists_the_default_models_and_the_way_out(default_registry_here):
    questions, _ = copy_mt_questions(default_registry_here)
    result = invoke(["judge", "answer", "-q", str(questions), "-m", "gpt-4o", "-o", "a.jsonl"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "gpt-4o" in text and "not in the default registry" in text
    assert "demo-aurora, demo-basalt, demo-cirrus, demo-delta" in text
    assert "--config" in text and "docs/judge.md" in text
    assert not (default_registry_here / "a.jsonl").exists()


def test_the_registry_example_in_the_walkthrough_is_valid():
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    names = [m.name for m in parse_registry(yaml.safe_load(block.group(1))).models]
    assert names == ["gpt-4o", "llama-3.1-8b", "qwen2.5:7b", "through-my-gateway"]
