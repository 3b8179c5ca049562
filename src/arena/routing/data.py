"""Training data for routers: battles with their prompt, from every place Arena keeps them.

- the public preference layout (``prompt``, ``model_a``, ``model_b``, ``winner``; JSON Lines or
  Parquet; a clean-battle export's ``conversation_a`` gives the prompt when ``prompt`` is absent);
- Arena's store (voted battles with their first prompt, through ``store.export``'s reader);
- judge verdicts (``arena judge`` output: pairwise, Arena-Hard or battle rows) with the question
  file that gives each question's first turn;
- golden labels from RouteLLM's benchmark tables (``benchmarks``): strong right and weak wrong
  means the strong model wins, the reverse the weak one, agreement a tie.

Held-out splits go by prompt (a hash of its text), so no prompt is on both sides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arena.ratings.battles import WINNER_CODES
from arena.routing.errors import RoutingError


@dataclass(frozen=True)
class PreferenceData:
    """Battles with prompts: ``winner`` holds public-layout values (``model_a``, ``tie``…)."""

    prompts: tuple[str, ...]
    model_a: np.ndarray
    model_b: np.ndarray
    winner: np.ndarray
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.model_a.tolist()) | set(self.model_b.tolist())))

    def subset(self, keep: np.ndarray) -> PreferenceData:
        keep = np.asarray(keep, dtype=bool)
        return PreferenceData(
            tuple(p for p, k in zip(self.prompts, keep, strict=True) if k),
            self.model_a[keep],
            self.model_b[keep],
            self.winner[keep],
            self.weights[keep],
        )

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], source: str) -> PreferenceData:
        """Rows with ``prompt``, ``model_a``, ``model_b``, ``winner`` (``weight`` optional)."""
        prompts, a, b, w, weights = [], [], [], [], []
        for i, row in enumerate(records):
            missing = [k for k in ("prompt", "model_a", "model_b", "winner") if not row.get(k)]
            if missing:
                raise RoutingError(f"{source}: row {i + 1} lacks {', '.join(missing)}")
            if row["winner"] not in WINNER_CODES:
                raise RoutingError(
                    f"{source}: row {i + 1} has winner {row['winner']!r}; expected one of "
                    f"{', '.join(sorted(WINNER_CODES))}"
                )
            if row["model_a"] == row["model_b"]:
                continue  # a model against itself says nothing about routing
            prompts.append(str(row["prompt"]))
            a.append(str(row["model_a"]))
            b.append(str(row["model_b"]))
            w.append(str(row["winner"]))
            weight = row.get("weight")
            try:
                weights.append(1.0 if weight is None else float(weight))
            except (TypeError, ValueError):
                raise RoutingError(f"{source}: row {i + 1} has weight {weight!r}") from None
        if not prompts:
            raise RoutingError(f"{source}: no battles with a prompt")
        return cls(
            tuple(prompts),
            np.array(a, dtype=object),
            np.array(b, dtype=object),
            np.array(w, dtype=object),
            np.array(weights, dtype=float),
        )


def first_user_text(conversation: Any) -> str | None:
    """The first user message of an OpenAI-style message list (text parts joined)."""
    if isinstance(conversation, str):
        try:
            conversation = json.loads(conversation)
        except ValueError:
            return None
    for message in conversation or []:
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
            return str(content) if content else None
    return None


def _with_prompt(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if not out.get("prompt"):
        out["prompt"] = first_user_text(out.get("conversation_a"))
    return out


def load_preference_file(path: str | Path) -> PreferenceData:
    """A preference table (``.jsonl``/``.json``/``.parquet``) in the public layout."""
    path = Path(path)
    if not path.is_file():
        raise RoutingError(f"{path}: no such file")
    if path.suffix == ".parquet":
        import polars as pl

        try:
            rows = pl.read_parquet(path).to_dicts()
        except Exception as e:  # polars raises several types for a bad file
            raise RoutingError(f"{path}: not a readable Parquet file ({e})") from None
    else:
        text = path.read_text(encoding="utf-8")
        try:
            if text.lstrip().startswith("["):
                rows = json.loads(text)
            else:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise RoutingError(f"{path}: not JSON Lines or a JSON array ({e})") from None
    return PreferenceData.from_records((_with_prompt(r) for r in rows), str(path))


def load_from_store(db: Any, *, anony_only: bool = False) -> PreferenceData:
    """Voted battles of Arena's store (leaked battles left out) with their first prompt."""
    from arena.store.export import iter_clean_battles

    rows = iter_clean_battles(db, anony_only=anony_only, include_leaked=False)
    return PreferenceData.from_records((_with_prompt(r) for r in rows), "the store")


def load_judge_verdicts(
    judgments: Sequence[str | Path], questions: str | Path, *, baseline: str | None = None
) -> PreferenceData:
    """Judge verdicts as battles, each with its question's first turn as the prompt."""
    from arena.judge.benchmark_files import load_questions
    from arena.judge.judgments import (
        concat,
        graded_battles,
        load_judgments,
        pair_battles,
        table_battles,
    )

    first_turn = {q.key: q.turns[0] for q in load_questions(questions)}
    data = load_judgments(judgments)
    parts = [pair_battles(data.pair)[0], table_battles(data.battle)]
    if data.graded:
        parts.append(graded_battles(data.graded, baseline=baseline)[0])
    columns = concat(*parts)
    records, unknown = [], 0
    for a, b, w, weight, qid in zip(
        columns.model_a,
        columns.model_b,
        columns.winner,
        columns.weights,
        columns.question_id,
        strict=True,
    ):
        key = str(qid).split(":")[0] if str(qid) not in first_turn else str(qid)
        if key not in first_turn:
            unknown += 1
            continue
        records.append(
            {"prompt": first_turn[key], "model_a": a, "model_b": b, "winner": w, "weight": weight}
        )
    if not records:
        raise RoutingError(
            f"none of the {unknown} verdicts names a question of {questions}"
            if unknown
            else "the judgment files hold no pairwise verdicts"
        )
    return PreferenceData.from_records(records, "judge verdicts")


def split_by_prompt(
    prompts: Sequence[str], *, test_fraction: float = 0.5, seed: int = 0
) -> np.ndarray:
    """True for prompts in the held-out part: decided by a seeded hash of the prompt text, so
    every copy of one prompt lands on the same side."""
    if not 0.0 < test_fraction < 1.0:
        raise RoutingError("the held-out fraction must be strictly between 0 and 1")
    draws = np.array(
        [
            int.from_bytes(hashlib.sha256(f"{seed}\x1f{p}".encode()).digest()[:8], "big") / 2.0**64
            for p in prompts
        ]
    )
    return draws < test_fraction
