"""How well taggers agree with labelled prompts: precision, recall, accuracy and support.

A labelled file is JSON Lines, one prompt per line: ``{"prompt": "..."}`` or
``{"turns": ["...", "..."]}`` with ``"labels": {"coding": true, "math": false, ...}``.
Two public sets convert directly: MT-Bench's questions (their category gives coding, math
and creative writing = writing or roleplay) and Arena-Hard's prompts (all chosen as hard).

Tags become labels the way the leaderboard reads them (``labels_from_tags``), so the same
scoring serves deterministic taggers and LLM taggers alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from arena.leaderboard.battle_columns import CRITERIA, HARD_PROMPT_MIN_CRITERIA
from arena.pipeline.tags import PromptRecord

HARD_MIN_CRITERIA = HARD_PROMPT_MIN_CRITERIA
MT_BENCH_LABELS = {
    "coding": ("coding",),
    "math": ("math",),
    "creative_writing": ("writing", "roleplay"),
}


class LabelledFileError(ValueError):
    """A labelled file that cannot be read; the message names the line."""


@dataclass(frozen=True)
class LabelledPrompt:
    record: PromptRecord
    labels: dict[str, bool]


@dataclass(frozen=True)
class BinaryMetrics:
    """Agreement of one tagger with one label. ``support`` counts labelled positives;
    ``missing`` counts prompts where the tagger gave no verdict (scored as negative)."""

    label: str
    total: int
    support: int
    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int
    missing: int = 0

    @property
    def precision(self) -> float | None:
        predicted = self.true_positive + self.false_positive
        return self.true_positive / predicted if predicted else None

    @property
    def recall(self) -> float | None:
        return self.true_positive / self.support if self.support else None

    @property
    def accuracy(self) -> float | None:
        right = self.true_positive + self.true_negative
        return right / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "precision": self.precision,
            "recall": self.recall,
            "accuracy": self.accuracy,
        }


def binary_metrics(label: str, pairs: Iterable[tuple[bool, bool | None]]) -> BinaryMetrics:
    """``(truth, prediction)`` pairs → metrics; a ``None`` prediction counts as negative."""
    tp = fp = fn = tn = missing = 0
    for truth, predicted in pairs:
        if predicted is None:
            missing += 1
        hit = bool(predicted)
        if truth and hit:
            tp += 1
        elif truth:
            fn += 1
        elif hit:
            fp += 1
        else:
            tn += 1
    return BinaryMetrics(label, tp + fp + fn + tn, tp + fn, tp, fp, fn, tn, missing)


def _flag(value: Any, key: str) -> bool | None:
    if isinstance(value, Mapping):
        value = value.get(key)
    return value if isinstance(value, bool) else None


def labels_from_tags(tags: Mapping[str, Any]) -> dict[str, bool | None]:
    """Stored tag values (public layout names) → the labels an eval file uses."""
    out: dict[str, bool | None] = {}
    if "is_code" in tags:
        out["coding"] = _flag(tags["is_code"], "is_code")
    for name in ("multi_turn", "long_query"):
        if name in tags:
            out[name] = _flag(tags[name], name)
    if "math_v0.1" in tags:
        out["math"] = _flag(tags["math_v0.1"], "math")
    if "creative_writing_v0.1" in tags:
        out["creative_writing"] = _flag(tags["creative_writing_v0.1"], "creative_writing")
    if "if_v0.1" in tags:
        out["instruction_following"] = _flag(tags["if_v0.1"], "if")
    criteria = tags.get("criteria_v0.1")
    if isinstance(criteria, Mapping):  # the seven criteria recounted, as the leaderboard does
        out["hard"] = sum(criteria.get(c) is True for c in CRITERIA) >= HARD_MIN_CRITERIA
    elif "criteria_v0.1" in tags:
        out["hard"] = None
    return out


def _record(index: int, prompts: Any) -> PromptRecord:
    return PromptRecord(battle_id=f"item-{index}", prompts=tuple(str(p) for p in prompts))


def read_labelled(path: Path) -> list[LabelledPrompt]:
    """Read a labelled JSON Lines file (see the module docstring)."""
    items: list[LabelledPrompt] = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise LabelledFileError(f"{path}:{number}: not JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise LabelledFileError(f"{path}:{number}: expected an object")
        prompts = row.get("turns", [row["prompt"]] if "prompt" in row else None)
        labels = row.get("labels")
        if not isinstance(prompts, list) or not prompts:
            raise LabelledFileError(f'{path}:{number}: needs "prompt" or a list of "turns"')
        if not isinstance(labels, dict) or not all(isinstance(v, bool) for v in labels.values()):
            raise LabelledFileError(f'{path}:{number}: "labels" must map names to true/false')
        items.append(LabelledPrompt(_record(len(items), prompts), dict(labels)))
    if not items:
        raise LabelledFileError(f"{path}: no labelled prompts")
    return items


def _lines(path: Path) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LabelledFileError(f"cannot read {path}: {e}") from None


def _json_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(_lines(path), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise LabelledFileError(f"{path}:{number}: not JSON ({e.msg})") from None
    return rows


def mt_bench_items(path: Path) -> list[LabelledPrompt]:
    """MT-Bench ``question.jsonl``: both turns; labels from the question's category."""
    items = []
    for row in _json_rows(path):
        if "turns" not in row or "category" not in row:
            raise LabelledFileError(f"{path}: not MT-Bench questions (need turns, category)")
        labels = {
            label: row["category"] in categories for label, categories in MT_BENCH_LABELS.items()
        }
        items.append(LabelledPrompt(_record(len(items), row["turns"]), labels))
    return items


def arena_hard_items(path: Path) -> list[LabelledPrompt]:
    """Arena-Hard ``question.jsonl``: every prompt was selected as hard."""
    items = []
    for row in _json_rows(path):
        if "prompt" in row:
            prompts = [row["prompt"]]
        elif isinstance(row.get("turns"), list):  # the v0.1 files' older shape
            prompts = [t["content"] if isinstance(t, dict) else t for t in row["turns"]]
        else:
            raise LabelledFileError(f"{path}: not Arena-Hard questions (need prompt)")
        items.append(LabelledPrompt(_record(len(items), prompts), {"hard": True}))
    return items


def evaluate(
    items: Sequence[LabelledPrompt], predictions: Sequence[Mapping[str, bool | None]]
) -> dict[str, BinaryMetrics]:
    """Metrics for every label that both the file and the predictions carry."""
    labels = sorted({k for item in items for k in item.labels})
    predicted = {k for p in predictions for k in p}
    out = {}
    for label in labels:
        if label not in predicted:
            continue
        pairs = [
            (item.labels[label], p.get(label))
            for item, p in zip(items, predictions, strict=True)
            if label in item.labels
        ]
        out[label] = binary_metrics(label, pairs)
    return out


def deterministic_predictions(items: Sequence[LabelledPrompt]) -> list[dict[str, bool | None]]:
    """What the deterministic taggers say about each labelled prompt."""
    from arena.pipeline.taggers import DETERMINISTIC_TAGGERS

    out = []
    for item in items:
        tags = {
            t.name: t.value for tagger in DETERMINISTIC_TAGGERS for t in tagger.run(item.record)
        }
        out.append(labels_from_tags(tags))
    return out


async def labeller_predictions(
    items: Sequence[LabelledPrompt], taggers: Sequence[Any], ask: Any, *, concurrency: int = 16
) -> list[dict[str, bool | None]]:
    """What labeller taggers say about each labelled prompt (``ok`` tags only; a failed or
    unparsable verdict is ``None``, scored as negative and counted as missing)."""
    import asyncio

    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(item: LabelledPrompt) -> dict[str, bool | None]:
        tags: dict[str, Any] = {}
        for tagger in taggers:
            async with gate:
                try:
                    produced = await tagger.run(item.record, ask)
                except Exception:  # scored as missing, like an error tag
                    produced = []
            for tag in produced:
                tags[tag.name] = tag.value if tag.status == "ok" else None
            for name in tagger.tag_names:
                tags.setdefault(name, None)
        return labels_from_tags(tags)

    return list(await asyncio.gather(*(one(item) for item in items)))
