"""RouteLLM's evaluation tables: per-prompt quality of a strong and a weak model.

Layout (``routellm/evals`` of RouteLLM): ``mmlu/mmlu_<subject>.csv`` and
``gsm8k/gsm8k_responses.csv`` with a ``prompt`` column and one True/False column per model;
``mt_bench/judgements.jsonl`` with GPT-4 single-grading scores per question, model and turn.
Each benchmark folder has ``contaminated_prompts.jsonl``: benchmark prompts (``eval_prompt``)
found in the arena training data. They are left out, as RouteLLM's evaluation does (for
MT-Bench, a question goes if either turn is listed). MT-Bench routes on the first turn, and
a question's quality is the mean score of both turns.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arena.routing.data import PreferenceData
from arena.routing.errors import RoutingError

BENCHMARKS = ("mmlu", "gsm8k", "mt-bench")
STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"

_QUESTION = re.compile(r"\[Question\]\n(.*?)\n\n\[The Start of", re.S)
_USER = re.compile(r"### User:\n(.*?)\n\n### (?:Assistant A|Reference answer):", re.S)


@dataclass(frozen=True)
class BenchmarkTable:
    """One benchmark: prompts and each model's quality on them (1/0 correctness or scores)."""

    name: str
    prompts: tuple[str, ...]
    strong: str
    weak: str
    strong_quality: np.ndarray
    weak_quality: np.ndarray
    total: int
    excluded: int

    def subset(self, keep: np.ndarray) -> BenchmarkTable:
        keep = np.asarray(keep, dtype=bool)
        return BenchmarkTable(
            self.name,
            tuple(p for p, k in zip(self.prompts, keep, strict=True) if k),
            self.strong,
            self.weak,
            self.strong_quality[keep],
            self.weak_quality[keep],
            self.total,
            self.excluded,
        )


def _folder(root: Path, name: str) -> Path:
    sub = root / name.replace("-", "_")
    if sub.is_dir():
        return sub
    if root.is_dir() and (root / "contaminated_prompts.jsonl").exists():
        return root
    raise RoutingError(f"{root}: no {name} folder in RouteLLM's evaluation layout")


def _contaminated(folder: Path) -> set[str]:
    path = folder / "contaminated_prompts.jsonl"
    if not path.exists():
        return set()
    return {json.loads(line)["eval_prompt"] for line in path.read_text().splitlines() if line}


def _bool(value: str, where: str) -> float:
    if value in ("True", "true", "1"):
        return 1.0
    if value in ("False", "false", "0"):
        return 0.0
    raise RoutingError(f"{where}: {value!r} is no True/False correctness")


def _correctness(name: str, files: list[Path], strong: str, weak: str) -> BenchmarkTable:
    prompts, s_q, w_q = [], [], []
    for path in files:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for col in ("prompt", strong, weak):
                if col not in (reader.fieldnames or []):
                    raise RoutingError(f"{path}: no {col!r} column")
            for row in reader:
                prompts.append(row["prompt"])
                s_q.append(_bool(row[strong], str(path)))
                w_q.append(_bool(row[weak], str(path)))
    if not prompts:
        raise RoutingError(f"no {name} rows under {files[0].parent if files else '?'}")
    return BenchmarkTable(
        name, tuple(prompts), strong, weak, np.array(s_q), np.array(w_q), len(prompts), 0
    )


def _decontaminate(table: BenchmarkTable, bad: set[str]) -> BenchmarkTable:
    keep = np.array([p not in bad for p in table.prompts])
    kept = table.subset(keep)
    return BenchmarkTable(
        kept.name,
        kept.prompts,
        kept.strong,
        kept.weak,
        kept.strong_quality,
        kept.weak_quality,
        table.total,
        int((~keep).sum()),
    )


def _mt_bench(folder: Path, strong: str, weak: str, questions: Path | None) -> BenchmarkTable:
    path = folder / "judgements.jsonl"
    if not path.exists():
        raise RoutingError(f"{folder}: no judgements.jsonl")
    scores: dict[tuple[str, str], list[float]] = {}
    turns: dict[str, list[str | None]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        qid, model, turn = str(row["question_id"]), row["model"], int(row["turn"])
        score = float(row["score"])
        if score < 0:
            continue  # the judge gave no score
        scores.setdefault((qid, model), []).append(score)
        slot = turns.setdefault(qid, [None, None])
        prompt = row.get("user_prompt", "")
        if turn == 1 and slot[0] is None and (m := _QUESTION.search(prompt)):
            slot[0] = m.group(1)
        if turn == 2 and slot[1] is None:
            users = _USER.findall(prompt)
            if len(users) >= 2:
                slot[1] = users[1]
    if questions is not None:
        from arena.judge.benchmark_files import load_questions

        for q in load_questions(questions):
            if q.key in turns:
                turns[q.key] = [*q.turns[:2], None][:2]
    bad = _contaminated(folder)
    prompts, s_q, w_q, excluded = [], [], [], 0
    for qid in sorted(turns, key=lambda k: (len(k), k)):
        first, second = turns[qid]
        if (qid, strong) not in scores or (qid, weak) not in scores or first is None:
            continue
        if first in bad or (second is not None and second in bad):
            excluded += 1
            continue
        prompts.append(first)
        s_q.append(float(np.mean(scores[(qid, strong)])))
        w_q.append(float(np.mean(scores[(qid, weak)])))
    if not prompts:
        raise RoutingError(f"{path}: no question judged for both {strong} and {weak}")
    return BenchmarkTable(
        "mt-bench",
        tuple(prompts),
        strong,
        weak,
        np.array(s_q),
        np.array(w_q),
        len(prompts) + excluded,
        excluded,
    )


def load_benchmark(
    root: str | Path,
    name: str,
    *,
    strong: str = STRONG,
    weak: str = WEAK,
    questions: str | Path | None = None,
) -> BenchmarkTable:
    """One benchmark of a RouteLLM evaluation folder, contaminated prompts left out.

    ``root`` is the folder holding ``mmlu/``, ``gsm8k/`` and ``mt_bench/`` (or one of them).
    ``questions``: MT-Bench's question file, else the turns are read from the judge prompts.
    """
    if name not in BENCHMARKS:
        raise RoutingError(f"unknown benchmark {name!r}; use one of {', '.join(BENCHMARKS)}")
    root = Path(root)
    if not root.is_dir():
        raise RoutingError(f"{root}: no such folder")
    folder = _folder(root, name)
    if name == "mt-bench":
        return _mt_bench(folder, strong, weak, Path(questions) if questions else None)
    pattern = "mmlu_*.csv" if name == "mmlu" else "gsm8k_responses.csv"
    files = sorted(folder.glob(pattern))
    if not files:
        raise RoutingError(f"{folder}: no {pattern} files")
    table = _correctness(name, files, strong, weak)
    return _decontaminate(table, _contaminated(folder))


def golden_labels(table: BenchmarkTable) -> PreferenceData:
    """Battles strong vs weak from per-prompt quality: the better one wins, equal is a tie."""
    diff = table.strong_quality - table.weak_quality
    winner = np.where(diff > 0, "model_a", np.where(diff < 0, "model_b", "tie")).astype(object)
    n = len(table.prompts)
    return PreferenceData(
        table.prompts,
        np.full(n, table.strong, dtype=object),
        np.full(n, table.weak, dtype=object),
        winner,
        np.ones(n),
    )
