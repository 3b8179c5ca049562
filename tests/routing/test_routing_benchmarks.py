"""RouteLLM's real evaluation tables (RouteLLM, routellm/evals, Apache-2.0; copied unchanged to
$ARENA_SHARED_DATA/routellm_evals): counts checked against the files read independently here,
contaminated prompts left out as RouteLLM's benchmarks.py does, golden labels."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from arena.routing.benchmarks import STRONG, WEAK, golden_labels, load_benchmark
from arena.routing.errors import RoutingError
from support.shared_data import SHARED_DATA

ROOT = SHARED_DATA / "routellm_evals"


def _csv_rows(pattern: str, folder: str) -> list[dict]:
    rows = []
    for path in sorted((ROOT / folder).glob(pattern)):
        with path.open(newline="", encoding="utf-8") as f:
            rows.extend(csv.DictReader(f))
    return rows


def _contaminated(folder: str) -> set[str]:
    lines = (ROOT / folder / "contaminated_prompts.jsonl").read_text().splitlines()
    return {json.loads(line)["eval_prompt"] for line in lines if line}


@pytest.mark.parametrize(
    ("name", "pattern", "folder"),
    [("mmlu", "mmlu_*.csv", "mmlu"), ("gsm8k", "gsm8k_responses.csv", "gsm8k")],
)
def test_correctness_tables_without_contaminated_prompts(name, pattern, folder):
    rows = _csv_rows(pattern, folder)
    bad = _contaminated(folder)
    kept = [r for r in rows if r["prompt"] not in bad]
    table = load_benchmark(ROOT, name)
    assert table.total == len(rows)
    assert len(table.prompts) == len(kept)
    assert table.excluded == len(rows) - len(kept) > 0
    assert not set(table.prompts) & bad
    assert table.strong_quality.sum() == sum(r[STRONG] == "True" for r in kept)
    assert table.weak_quality.sum() == sum(r[WEAK] == "True" for r in kept)
    # the stronger model is the stronger one on both
    assert table.strong_quality.mean() > table.weak_quality.mean()
    labels = golden_labels(table)
    strong_wins = sum(r[STRONG] == "True" and r[WEAK] == "False" for r in kept)
    weak_wins = sum(r[STRONG] == "False" and r[WEAK] == "True" for r in kept)
    assert (labels.winner == "model_a").sum() == strong_wins
    assert (labels.winner == "model_b").sum() == weak_wins
    assert (labels.winner == "tie").sum() == len(kept) - strong_wins - weak_wins
    assert set(labels.model_a) == {STRONG} and set(labels.model_b) == {WEAK}


def test_published_sizes():
    # RouteLLM's evaluation prints 14037/14042 MMLU and 1307/1319 GSM8K prompts after
    # decontamination; MT-Bench keeps 72 of 80 questions.
    assert len(load_benchmark(ROOT, "mmlu").prompts) == 14037
    assert len(load_benchmark(ROOT, "gsm8k").prompts) == 1307
    assert len(load_benchmark(ROOT, "mt-bench").prompts) == 72


def test_mt_bench_from_judge_prompts_matches_the_question_file():
    questions = SHARED_DATA / "mt_bench" / "question.jsonl"
    parsed = load_benchmark(ROOT, "mt-bench")
    given = load_benchmark(ROOT, "mt-bench", questions=questions)
    assert parsed.prompts == given.prompts
    np.testing.assert_array_equal(parsed.strong_quality, given.strong_quality)
    records = [json.loads(line) for line in questions.read_text().splitlines() if line]
    turns = [r["turns"] for r in records]
    bad = _contaminated("mt_bench")
    clean = [t[0] for t in turns if t[0] not in bad and t[1] not in bad]
    assert sorted(parsed.prompts) == sorted(clean)
    assert parsed.excluded == len(turns) - len(clean) == 8
    # quality: the mean of both turns' scores, read here straight from the file
    rows = [json.loads(line) for line in (ROOT / "mt_bench" / "judgements.jsonl").open()]
    first = {r["turns"][0]: str(r["question_id"]) for r in records}
    qid = first[parsed.prompts[0]]
    scores = [
        float(r["score"]) for r in rows if str(r["question_id"]) == qid and r["model"] == STRONG
    ]
    assert len(scores) == 2
    assert parsed.strong_quality[0] == pytest.approx(np.mean(scores))


def test_bad_benchmark_inputs(tmp_path):
    with pytest.raises(RoutingError, match="unknown benchmark"):
        load_benchmark(ROOT, "hellaswag")
    with pytest.raises(RoutingError, match="no such folder"):
        load_benchmark(tmp_path / "missing", "mmlu")
    with pytest.raises(RoutingError, match="no mmlu folder"):
        load_benchmark(tmp_path, "mmlu")
    (tmp_path / "gsm8k").mkdir()
    (tmp_path / "gsm8k" / "gsm8k_responses.csv").write_text("prompt,x\nhi,True\n")
    with pytest.raises(RoutingError, match="column"):
        load_benchmark(tmp_path, "gsm8k")
