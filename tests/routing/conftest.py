"""Synthetic routing data whose answer is known, and a migrated store for the loader tests.

Prompts come from topics with their own vocabulary. On ``math`` prompts the strong model
almost always wins; on ``chat`` prompts the weak model answers as well (a tie) or better.
A router that reads the prompt can learn this; ``random`` cannot.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from arena.routing.benchmarks import BenchmarkTable
from arena.routing.data import PreferenceData

STRONG, WEAK, MID = "big-model", "small-model", "mid-model"
TOPICS = {
    "math": ["integral", "derivative", "equation", "theorem", "prove", "matrix", "eigenvalue"],
    "chat": ["hello", "weather", "movie", "recipe", "vacation", "birthday", "weekend"],
    "code": ["python", "function", "compile", "bug", "loop", "pointer", "recursion"],
}
FILLER = ["please", "tell", "me", "about", "the", "a", "an", "some", "what", "how", "why"]


def make_prompts(n: int, topics: list[str], seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    prompts, labels = [], []
    for i in range(n):
        topic = topics[i % len(topics)]
        words = list(rng.choice(TOPICS[topic], 5)) + list(rng.choice(FILLER, 3))
        rng.shuffle(words)
        prompts.append(f"{' '.join(words)} #{seed}-{i}")
        labels.append(topic)
    return prompts, labels


def pair_battles(n: int, seed: int, noise: float = 0.1) -> PreferenceData:
    """Strong vs weak: math → strong wins; chat → tie or weak wins; ``noise`` flips."""
    rng = np.random.default_rng(seed + 1)
    prompts, labels = make_prompts(n, ["math", "chat"], seed)
    a, b, w = [], [], []
    for topic in labels:
        strong_wins = (topic == "math") != (rng.random() < noise)
        outcome = "strong" if strong_wins else ("tie" if rng.random() < 0.5 else "weak")
        if rng.random() < 0.5:
            a.append(STRONG), b.append(WEAK)
            w.append({"strong": "model_a", "weak": "model_b", "tie": "tie"}[outcome])
        else:
            a.append(WEAK), b.append(STRONG)
            w.append({"strong": "model_b", "weak": "model_a", "tie": "tie"}[outcome])
    return PreferenceData(
        tuple(prompts),
        np.array(a, dtype=object),
        np.array(b, dtype=object),
        np.array(w, dtype=object),
        np.ones(n),
    )


def pair_table(n: int, seed: int) -> BenchmarkTable:
    """A benchmark where the weak model fails math and both pass chat."""
    prompts, labels = make_prompts(n, ["math", "chat"], seed)
    weak = np.array([0.0 if t == "math" else 1.0 for t in labels])
    return BenchmarkTable("synthetic", tuple(prompts), STRONG, WEAK, np.ones(n), weak, n, 0)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def preference_rows(data: PreferenceData) -> list[dict]:
    return [
        {"prompt": p, "model_a": a, "model_b": b, "winner": w}
        for p, a, b, w in zip(data.prompts, data.model_a, data.model_b, data.winner, strict=True)
    ]


def write_routellm_folder(root: Path, table: BenchmarkTable, contaminated: list[str]) -> Path:
    """A GSM8K folder in RouteLLM's layout holding ``table``."""
    import csv

    folder = root / "gsm8k"
    folder.mkdir(parents=True)
    with (folder / "gsm8k_responses.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", WEAK, STRONG])
        for p, s, w in zip(table.prompts, table.strong_quality, table.weak_quality, strict=True):
            writer.writerow([p, bool(w), bool(s)])
    write_jsonl(
        folder / "contaminated_prompts.jsonl",
        [
            {"train_prompt": p, "eval_prompt": p, "train_idx": 0, "eval_idx": 0}
            for p in contaminated
        ],
    )
    return root


@pytest.fixture
def store_db(database_url: str) -> Iterator:
    """A migrated, emptied database (SQLite, then PostgreSQL)."""
    from support.empty_store import empty_store

    with empty_store(database_url) as db:
        yield db
