"""Reading judgment files back, whatever wrote them, and turning them into battles.

Layouts recognised row by row:

- ``single``: MT-Bench single grading (``model``, ``turn``, ``score``; -1 means no score);
- ``pair``: MT-Bench pairwise (``model_1``, ``model_2``, ``g1_winner``, ``g2_winner``);
- ``graded``: Arena-Hard (``model``, ``games: [{score: "A>B", ...}, ...]``; ``baseline`` in
  the row or given by the user, as in Arena-Hard v0.1 files);
- ``battle``: a battle table (``model_a``, ``model_b``, ``winner``), e.g. Arena-Hard's
  ``arena_hard_battles.jsonl`` or the arena's clean-battle export;
- ``redteam``: replayed red-team attacks (``model``, ``attack_succeeded``).

Rows written by ``arena judge grade`` carry a ``mode``; when a resumed run rewrote a task,
the last row wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arena.errors import BadRequest
from arena.judge.grading import combine_pair_games, row_key
from arena.judge.redteam_grading import redteam_row_key
from arena.judge.sources import expand_locations, read_jsonl

STRONG_VERDICT_WEIGHT = 3.0


def row_layout(row: Mapping[str, Any]) -> str | None:
    if "attack_succeeded" in row and "model" in row:
        return "redteam"
    if "games" in row:
        return "graded"
    if "g1_winner" in row:
        return "pair"
    if "score" in row and "model" in row:
        return "single"
    if {"model_a", "model_b", "winner"} <= row.keys():
        return "battle"
    return None


@dataclass(frozen=True)
class JudgmentSet:
    """Judgment rows by layout (latest row per task)."""

    single: tuple[dict[str, Any], ...] = ()
    pair: tuple[dict[str, Any], ...] = ()
    graded: tuple[dict[str, Any], ...] = ()
    battle: tuple[dict[str, Any], ...] = ()
    redteam: tuple[dict[str, Any], ...] = ()

    @property
    def kinds(self) -> list[str]:
        return [k for k in ("single", "pair", "graded", "battle", "redteam") if getattr(self, k)]


def collect_judgments(rows: Iterable[Mapping[str, Any]], source: str = "<rows>") -> JudgmentSet:
    buckets: dict[str, dict[Any, dict[str, Any]]] = {
        "single": {},
        "pair": {},
        "graded": {},
        "battle": {},
        "redteam": {},
    }
    for i, row in enumerate(rows):
        layout = row_layout(row)
        if layout is None:
            raise BadRequest(f"{source}: row {i + 1} is no judgment or battle layout I know")
        if layout == "redteam":
            key = redteam_row_key(row)
        else:
            key = row_key(row) if "mode" in row else None
        buckets[layout][key if key is not None else i] = dict(row)
    return JudgmentSet(**{k: tuple(v.values()) for k, v in buckets.items()})


def load_judgments(locations: Iterable[str | Path]) -> JudgmentSet:
    """Judgment rows from files, directories of ``*.jsonl`` files, or URLs."""
    rows: list[dict[str, Any]] = []
    for location in expand_locations(locations):
        rows.extend(read_jsonl(location))
    if not rows:
        raise BadRequest("the judgment files hold no rows")
    return collect_judgments(rows, ", ".join(str(x) for x in locations))


def judge_name(row: Mapping[str, Any]) -> str:
    judge = row.get("judge", "unknown")
    if isinstance(judge, list | tuple):
        return str(judge[0]) if judge else "unknown"
    return str(judge)


@dataclass(frozen=True)
class BattleColumns:
    """Battle columns ready for ``arena.ratings.Battles.from_columns``."""

    model_a: np.ndarray
    model_b: np.ndarray
    winner: np.ndarray
    weights: np.ndarray
    question_id: np.ndarray

    def __len__(self) -> int:
        return len(self.winner)


def _columns(records: Sequence[tuple[str, str, str, float, str]]) -> BattleColumns:
    def column(i: int) -> np.ndarray:
        return np.array([r[i] for r in records], dtype=object)

    return BattleColumns(
        column(0),
        column(1),
        column(2),
        np.array([r[3] for r in records], dtype=float),
        column(4),
    )


_GRADED_WINNER = {
    "A>>B": ("model_a", STRONG_VERDICT_WEIGHT),
    "A>B": ("model_a", 1.0),
    "A=B": ("tie", 1.0),
    "B>A": ("model_b", 1.0),
    "B>>A": ("model_b", STRONG_VERDICT_WEIGHT),
}


def graded_battles(
    rows: Iterable[Mapping[str, Any]],
    *,
    baseline: str | None = None,
    strong_weight: float = STRONG_VERDICT_WEIGHT,
) -> tuple[BattleColumns, int]:
    """Arena-Hard judgments as battles: every game is a battle, a strong verdict weighs
    ``strong_weight``. Game 1 shows the baseline as A, game 2 as B. Games without a verdict
    are left out and counted."""
    records: list[tuple[str, str, str, float, str]] = []
    skipped = 0
    for row in rows:
        base = row.get("baseline") or baseline
        if not base:
            raise BadRequest("Arena-Hard judgments without a baseline field need --baseline")
        model = row["model"]
        qid = str(row.get("question_id", row.get("uid")))
        for game_number, game in enumerate(row["games"][:2], start=1):
            score = game.get("score")
            if score not in _GRADED_WINNER:
                skipped += 1
                continue
            winner, weight = _GRADED_WINNER[score]
            if weight != 1.0:
                weight = strong_weight
            a, b = (base, model) if game_number == 1 else (model, base)
            records.append((a, b, winner, weight, qid))
    return _columns(records), skipped


def pair_battles(rows: Iterable[Mapping[str, Any]]) -> tuple[BattleColumns, int]:
    """MT-Bench pairwise judgments as battles: one per pair and turn, both orders combined
    (disagreement is a tie); pairs with a failed game are left out and counted."""
    records: list[tuple[str, str, str, float, str]] = []
    skipped = 0
    for row in rows:
        winner = row.get("winner") or combine_pair_games(
            _as_side(row["g1_winner"], row), _as_side(row["g2_winner"], row)
        )
        winner = _as_side(winner, row)
        if winner not in ("model_1", "model_2", "tie"):
            skipped += 1
            continue
        outcome = {"model_1": "model_a", "model_2": "model_b", "tie": "tie"}[winner]
        qid = f"{row.get('question_id')}:{row.get('turn', 1)}"
        records.append((row["model_1"], row["model_2"], outcome, 1.0, qid))
    return _columns(records), skipped


def _as_side(value: str, row: Mapping[str, Any]) -> str:
    """Winners in public files name the model or say model_1/model_2; map to sides."""
    if value == row.get("model_1"):
        return "model_1"
    if value == row.get("model_2"):
        return "model_2"
    if value in ("tie", "tie (inconsistent)"):
        return "tie"
    return value


def table_battles(rows: Iterable[Mapping[str, Any]]) -> BattleColumns:
    """A battle table as it is (weight 1 each)."""
    records = [
        (
            str(r["model_a"]),
            str(r["model_b"]),
            str(r["winner"]),
            float(r.get("weight", 1.0)),
            str(r.get("question_id", "")),
        )
        for r in rows
    ]
    return _columns(records)


def concat(*parts: BattleColumns) -> BattleColumns:
    parts = tuple(p for p in parts if len(p))
    if not parts:
        return _columns([])
    return BattleColumns(
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in BattleColumns.__dataclass_fields__
        )
    )
