"""``arena pipeline run --input FILE --out FILE``: tag a clean-battle file instead of the store.

For battles that never passed through Arena's store (a public dump, another arena's export):
each row's user turns (``conversation_a``, else ``conversation``) go through the same
taggers, dedup runs over the whole file, and the rows are written back with ``language``,
``is_code``, ``category_tag`` (LLM tags merged into any the row had) and ``dedup_tag``, the
fields the leaderboard reads. A file is tagged in one pass; nothing is incremental.
Input: a JSON array, JSON Lines or Parquet; output: JSON Lines (or Parquet by suffix).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from arena.atomic_files import write_atomic, write_jsonl
from arena.pipeline import dedup
from arena.pipeline.labelling import DEFAULT_CONCURRENCY, Ask, label_one
from arena.pipeline.run_progress import TaggerCounts
from arena.pipeline.runner import NO_LABELLER, DedupSummary, PipelineReport
from arena.pipeline.tagging_pool import TaggingPool
from arena.pipeline.tags import DeterministicTagger, LabellerTagger, PromptRecord

CATEGORY_TAGS = ("criteria_v0.1", "if_v0.1", "math_v0.1", "creative_writing_v0.1")
PARQUET = (".parquet", ".pq")


class BattleFileError(ValueError):
    """A battle file that cannot be read or written; the message says why."""


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of a JSON array, JSON Lines or Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise BattleFileError(f"no such file: {path}")
    if path.suffix.lower() in PARQUET:
        import polars as pl

        try:
            return pl.read_parquet(path).to_dicts()
        except (pl.exceptions.PolarsError, OSError) as e:
            raise BattleFileError(f"cannot read {path}: {e}") from None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BattleFileError(f"cannot read {path}: {e}") from None
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise BattleFileError(f"{path}: not a JSON array ({e})") from None
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise BattleFileError(f"{path}:{number}: not JSON ({e.msg})") from None
    if not all(isinstance(r, dict) for r in rows):
        raise BattleFileError(f"{path}: every battle must be a JSON object")
    return rows


def _prompts(row: dict[str, Any]) -> tuple[str, ...]:
    from arena.leaderboard.battle_text_features import message_text

    conversation = row.get("conversation_a") or row.get("conversation") or []
    if not isinstance(conversation, list):
        return ()
    return tuple(
        message_text(m.get("content"))
        for m in conversation
        if isinstance(m, dict) and m.get("role") == "user"
    )


def _labelled(records, labellers, ask, concurrency, close) -> dict[int, dict[str, list]]:
    """Every labeller's tags per battle, on one event loop that then closes the labeller."""

    async def all_tags() -> dict[int, dict[str, list]]:
        gate = asyncio.Semaphore(max(1, concurrency))
        out: dict[int, dict[str, list]] = {}
        try:
            for index, tagger in enumerate(labellers):
                found = await asyncio.gather(*(label_one(tagger, r, ask, gate) for r in records))
                out[index] = {r.battle_id: tags for r, tags in zip(records, found, strict=True)}
        finally:
            if close is not None:
                await close()
        return out

    return asyncio.run(all_tags())


def tag_rows(
    rows: list[dict[str, Any]],
    *,
    taggers: Sequence[DeterministicTagger],
    labellers: Sequence[LabellerTagger] = (),
    ask: Ask | None = None,
    close_ask: Callable[[], Awaitable[None]] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    workers: int = 1,
) -> PipelineReport:
    """Tag ``rows`` in place (see the module docstring); returns the run's report."""
    records = [PromptRecord(str(i), p) for i, row in enumerate(rows) if (p := _prompts(row))]
    counts = {t.name: TaggerCounts() for t in taggers}
    found: dict[str, dict[str, Any]] = {r.battle_id: {} for r in records}
    with TaggingPool(taggers, workers) as pool:
        results = pool.tag(records, set())
    for index, battle_id, tags in results:
        counts[taggers[index].name].count(tags)
        found[battle_id].update({t.name: t.value for t in tags if t.status == "ok"})
    active = list(labellers) if ask is not None else []
    if active and ask is not None:
        for index, by_battle in _labelled(records, active, ask, concurrency, close_ask).items():
            counted = counts.setdefault(active[index].name, TaggerCounts())
            for battle_id, tags in by_battle.items():
                counted.count(tags)
                found[battle_id].update({t.name: t.value for t in tags if t.status == "ok"})
    hashes = [(b, tags["prompt_hash"]) for b, tags in found.items() if "prompt_hash" in tags]
    dedup_values = dedup.dedup_tags(hashes)
    for battle_id, tags in found.items():
        _fill(rows[int(battle_id)], tags, dedup_values.get(battle_id))
    summary = DedupSummary(
        battles=len(dedup_values),
        high_freq=sum(v["high_freq"] for v in dedup_values.values()),
        not_sampled=sum(not v["sampled"] for v in dedup_values.values()),
        written=len(dedup_values),
    )
    skipped = {} if ask is not None else {t.name: NO_LABELLER for t in labellers}
    return PipelineReport(counts, skipped, summary, None, "not run on a file")


def _fill(row: dict[str, Any], tags: dict[str, Any], dedup_value: Any) -> None:
    if isinstance(tags.get("language"), str):
        row["language"] = tags["language"]
    if isinstance(tags.get("is_code"), bool):
        row["is_code"] = tags["is_code"]
    new = {name: tags[name] for name in CATEGORY_TAGS if isinstance(tags.get(name), dict)}
    if new:
        old = row.get("category_tag")
        row["category_tag"] = {**(old if isinstance(old, dict) else {}), **new}
    if dedup_value is not None:
        row["dedup_tag"] = dedup_value


def write_rows(rows: list[dict[str, Any]], out: Path) -> None:
    """Write JSON Lines (Parquet for a .parquet name), atomically."""
    out = Path(out)

    def write(tmp: Path) -> None:
        if out.suffix.lower() in PARQUET:
            import polars as pl

            pl.from_dicts(rows, infer_schema_length=None).write_parquet(tmp)
        else:
            write_jsonl(rows, tmp, default=str)

    write_atomic(out, write)
