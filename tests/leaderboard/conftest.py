"""Fixtures for the leaderboard tests: generated battles in the public clean-battle layout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.shared_data import SHARED_DATA

ARENA_HARD = SHARED_DATA / "arena_hard_v0.1"
CRITERIA = (
    "specificity",
    "domain_knowledge",
    "complexity",
    "problem_solving",
    "creativity",
    "technical_accuracy",
    "real_world",
)
# True strengths (log-odds) of the generated models; the names exercise odd characters.
STRENGTHS = {
    "alpha-large": 1.2,
    "beta-medium": 0.6,
    "gamma-small": 0.0,
    "delta-tiny": -0.7,
}


def generate_battles(
    n: int = 400,
    *,
    seed: int = 7,
    strengths: dict[str, float] | None = None,
    with_conversations: bool = False,
    with_metadata: bool = True,
) -> list[dict[str, Any]]:
    """Battles drawn from a Bradley–Terry model with every public field filled in."""
    rng = np.random.default_rng(seed)
    strengths = strengths or STRENGTHS
    names = list(strengths)
    rows = []
    for i in range(n):
        a, b = rng.choice(len(names), size=2, replace=False)
        ma, mb = names[a], names[b]
        p = 1 / (1 + np.exp(-(strengths[ma] - strengths[mb])))
        u = rng.random()
        winner = (
            "model_a"
            if u < p * 0.9
            else "model_b"
            if u < 0.9
            else rng.choice(["tie", "tie (bothbad)"])
        )
        criteria_true = int(rng.integers(0, 8))
        turn = 1 if i % 5 else 2
        row: dict[str, Any] = {
            "question_id": f"q{i}",
            "model_a": ma,
            "model_b": mb,
            "winner": str(winner),
            "judge": f"judge{i % 13}",
            "turn": turn,
            "anony": bool(i % 10 != 0),
            "language": "English" if i % 4 else "German",
            "tstamp": 1_700_000_000.0 + 3600.0 * i,
            "dedup_tag": {"high_freq": bool(i % 7 == 0), "sampled": bool(i % 6 != 0)},
            "category_tag": {
                "criteria_v0.1": {c: k < criteria_true for k, c in enumerate(CRITERIA)},
                "if_v0.1": {"if": bool(i % 3 == 0), "score": int(i % 5)},
                "math_v0.1": {"math": bool(i % 8 == 0)},
                "creative_writing_v0.1": {"creative_writing": bool(i % 9 == 0), "score": "no"},
            },
        }
        if with_metadata:
            row["conv_metadata"] = {
                "sum_user_tokens": (600 if i % 11 == 0 else 40),
                "sum_assistant_a_tokens": int(rng.integers(50, 800)),
                "sum_assistant_b_tokens": int(rng.integers(50, 800)),
                "context_a_tokens": 10,
                "context_b_tokens": 10,
                "turns": turn,
                "header_count_a": {f"h{k}": int(rng.integers(0, 3)) for k in range(1, 7)},
                "header_count_b": {f"h{k}": int(rng.integers(0, 3)) for k in range(1, 7)},
                "list_count_a": {"ordered": int(rng.integers(0, 5)), "unordered": 1},
                "list_count_b": {"ordered": int(rng.integers(0, 5)), "unordered": 0},
                "bold_count_a": {"**": int(rng.integers(0, 4)), "__": 0},
                "bold_count_b": {"**": int(rng.integers(0, 4)), "__": 0},
            }
        if with_conversations:
            prompt = "Write a function" if i % 4 == 0 else "Tell me about rivers"
            code = "```python\nprint('hi')\n```" if i % 4 == 0 else "Rivers **flow**.\n\n- one"
            row["conversation_a"] = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": f"# Answer\n\n{code}"},
            ]
            row["conversation_b"] = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": "Plain answer."},
            ]
        rows.append(row)
    return rows


def write_battles(rows: list[dict[str, Any]], path: Path, fmt: str) -> Path:
    """Write rows as a JSON array, JSON Lines or Parquet (via Polars)."""
    if fmt == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    elif fmt == "parquet":
        import polars as pl

        pl.from_dicts(rows, infer_schema_length=None).write_parquet(path)
    else:
        raise ValueError(fmt)
    return path


@pytest.fixture
def battles_file(tmp_path) -> Callable[..., Path]:
    """Factory: ``battles_file(fmt, **generate_kwargs)`` → a file of generated battles."""

    def make(fmt: str = "jsonl", name: str | None = None, **kwargs: Any) -> Path:
        suffix = {"json": ".json", "jsonl": ".jsonl", "parquet": ".parquet"}[fmt]
        return write_battles(generate_battles(**kwargs), tmp_path / (name or f"b{suffix}"), fmt)

    return make


@pytest.fixture
def make_rows() -> Callable[..., list[dict[str, Any]]]:
    """Factory: ``make_rows(n, **kwargs)`` → generated battle dicts."""
    return generate_battles


@pytest.fixture
def write_rows(tmp_path) -> Callable[..., Path]:
    """Factory: ``write_rows(rows, fmt, name=None)`` → the written file."""

    def write(rows: list[dict[str, Any]], fmt: str = "jsonl", name: str | None = None) -> Path:
        suffix = {"json": ".json", "jsonl": ".jsonl", "parquet": ".parquet"}[fmt]
        return write_battles(rows, tmp_path / (name or f"rows{suffix}"), fmt)

    return write
