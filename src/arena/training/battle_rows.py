"""Voted battles as training material: read from the store or a battles file, selected by the
pipeline's tags, scrubbed of personal data.

Rows come out in the clean-battle layout (``model_a``, ``model_b``, ``winner``, ``anony``,
``language``, ``conversation_a``/``conversation_b``, ``is_code``, ``category_tag``,
``dedup_tag``), whatever the source:

- the store, through ``arena.store.conversation_export`` (the release export's reader): voters
  who opted out of releases, flagged voters and battles with a failed answer stay out;
- a file written by ``arena export battles`` (clean-battle layout) or ``arena export
  conversations`` (release layout, tags under ``tags``), as JSON Lines, JSON or Parquet.

Selection reuses the leaderboard's definitions (``arena.leaderboard.filters``): a category or
a language keeps a battle when the leaderboard would count it there. Several languages or
several categories keep a battle matching any of them; dedup keeps only ``sampled`` battles.
Texts are scrubbed with the release scrubber, both sides together.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.store.export import WINNERS, tag_fields

BATCH = 2000
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
PARQUET_SUFFIXES = (".parquet", ".pq")


class BattleDataError(ValueError):
    """A battles file that cannot be read, or a row that is not a battle."""


@dataclass(frozen=True)
class BattleSelection:
    """Which battles become training data."""

    languages: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    dedup_sampled_only: bool = True
    anony_only: bool = False


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
        for m in value
    ):
        raise BattleDataError(f"{where}: expected a list of {{role, content}} messages")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def normalize_battle(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """One battle row (clean-battle or release layout) in the clean-battle layout."""
    if not isinstance(raw, dict):
        raise BattleDataError(f"{where}: a battle must be a JSON object")
    missing = [k for k in ("winner", "conversation_a", "conversation_b") if k not in raw]
    if missing:
        raise BattleDataError(
            f"{where}: not a battle row (missing {', '.join(missing)}); expected the layout "
            "of `arena export battles` or `arena export conversations`"
        )
    if raw["winner"] not in WINNERS.values():
        raise BattleDataError(f"{where}: unknown winner {raw['winner']!r}")
    row = dict(raw)
    row["conversation_a"] = _messages(raw["conversation_a"], where)
    row["conversation_b"] = _messages(raw["conversation_b"], where)
    tags = raw.get("tags")
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except ValueError:
            raise BattleDataError(f"{where}: tags is not JSON") from None
    if isinstance(tags, dict):  # the release layout keeps the pipeline's tags under ``tags``
        fields = tag_fields({**tags, "language": raw.get("language")})
        for name, value in fields.items():
            if row.get(name) is None:
                row[name] = value
    row.setdefault("model_a", "model_a")
    row.setdefault("model_b", "model_b")
    return row


def _file_rows(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
            for batch in parquet.iter_batches(batch_size=BATCH):
                for i, raw in enumerate(batch.to_pylist()):
                    yield normalize_battle(raw, f"{path} row {i + 1}")
        except OSError as e:
            raise BattleDataError(f"cannot read {path} as Parquet: {e}") from None
        return
    if suffix not in JSON_SUFFIXES:
        raise BattleDataError(f"{path}: use a .jsonl, .json or .parquet file")
    with path.open(encoding="utf-8") as f:
        first = f.read(1)
        while first.isspace():
            first = f.read(1)
        f.seek(0)
        if first == "[":
            try:
                items = json.load(f)
            except ValueError as e:
                raise BattleDataError(f"{path}: not valid JSON: {e}") from None
            for i, raw in enumerate(items):
                yield normalize_battle(raw, f"{path} item {i + 1}")
            return
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except ValueError as e:
                raise BattleDataError(f"{path} line {number}: not valid JSON: {e}") from None
            yield normalize_battle(raw, f"{path} line {number}")


def _store_rows(url: str, excluded: Counter[str]) -> Iterator[dict[str, Any]]:
    from arena.store.conversation_export import iter_release_battles
    from arena.store.db import Database

    db = Database(url)
    try:
        for battle in iter_release_battles(db, excluded):
            tags = {name: tag.value for name, tag in battle.tags.items()}
            yield {
                "question_id": battle.battle_id,
                "model_a": battle.model_a,
                "model_b": battle.model_b,
                "winner": WINNERS[battle.vote],
                "anony": battle.mode == "battle",
                "turn": battle.turns,
                "conversation_a": [{"role": r, "content": c} for r, c in battle.conversation_a],
                "conversation_b": [{"role": r, "content": c} for r, c in battle.conversation_b],
                **tag_fields(tags),
            }
    finally:
        db.dispose()


def _selected(batch: list[dict[str, Any]], selection: BattleSelection) -> list[dict[str, Any]]:
    """The rows of ``batch`` the selection keeps (the leaderboard's category rules)."""
    import polars as pl

    from arena.leaderboard.battle_table import normalize_rows
    from arena.leaderboard.filters import LANGUAGE_PREFIX, category_expr

    if not batch:
        return []
    frame = normalize_rows(batch)
    conditions: list[pl.Expr] = []
    if selection.languages:
        conditions.append(
            pl.any_horizontal([category_expr(LANGUAGE_PREFIX + x) for x in selection.languages])
        )
    if selection.categories:
        conditions.append(pl.any_horizontal([category_expr(c) for c in selection.categories]))
    if selection.dedup_sampled_only:
        conditions.append(pl.col("dedup_sampled"))
    if selection.anony_only:
        conditions.append(pl.col("anony"))
    if not conditions:
        return batch
    keep = frame.select(pl.all_horizontal(conditions).alias("keep"))["keep"].to_list()
    return [row for row, kept in zip(batch, keep, strict=True) if kept]


def check_categories(categories: Iterable[str]) -> None:
    """Raise ``BattleDataError`` for a category the leaderboard does not know."""
    from arena.errors import BadRequest
    from arena.leaderboard.filters import canonical_category

    for name in categories:
        try:
            canonical_category(name)
        except BadRequest as e:
            raise BattleDataError(str(e)) from None


def scrub_row(row: dict[str, Any], scrubber: Any, found: Counter[str]) -> dict[str, Any]:
    """Both conversations scrubbed together (a name found on one side goes on both)."""
    sides = [row["conversation_a"], row["conversation_b"]]
    texts = [m["content"] for side in sides for m in side]
    results = iter(scrubber.scrub_conversation(texts))
    out = dict(row)
    for key, side in zip(("conversation_a", "conversation_b"), sides, strict=True):
        scrubbed = []
        for message in side:
            result = next(results)
            found.update(result.counts)
            scrubbed.append({"role": message["role"], "content": result.text})
        out[key] = scrubbed
    return out


@dataclass
class ReadReport:
    """How many battles were read, kept, left out by the store, and what scrubbing found."""

    read: int = 0
    kept: int = 0
    excluded: Counter[str] | None = None
    scrubbed: Counter[str] | None = None


def training_battles(
    source: str | Path,
    selection: BattleSelection,
    *,
    from_database: bool,
    scrubber: Any = None,
    report: ReadReport | None = None,
) -> Iterator[dict[str, Any]]:
    """Selected, scrubbed battles from a database URL or a battles file."""
    from arena.pipeline.scrub import Scrubber

    check_categories(selection.categories)
    report = report if report is not None else ReadReport()
    report.excluded = report.excluded if report.excluded is not None else Counter()
    report.scrubbed = report.scrubbed if report.scrubbed is not None else Counter()
    scrubber = scrubber or Scrubber()
    if from_database:
        rows = _store_rows(str(source), report.excluded)
    else:
        path = Path(source)
        if not path.is_file():
            raise BattleDataError(f"no battles file at {path}")
        rows = _file_rows(path)
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield from _finish(batch, selection, scrubber, report)
            batch = []
    yield from _finish(batch, selection, scrubber, report)


def _finish(
    batch: list[dict[str, Any]], selection: BattleSelection, scrubber: Any, report: ReadReport
) -> Iterator[dict[str, Any]]:
    report.read += len(batch)
    kept = _selected(batch, selection)
    report.kept += len(kept)
    assert report.scrubbed is not None
    for row in kept:
        yield scrub_row(row, scrubber, report.scrubbed)
