"""``arena pipeline run``: tag every battle of the store that is new or whose tagger changed.

Incremental and resumable: a battle is picked up only while it lacks a tagger's tag at the
tagger's current version, and tags are written (upserted) and committed batch by batch, so a
run that is killed resumes where it stopped and a second run over unchanged data writes
nothing. Deterministic taggers run first, then labeller (LLM) taggers when an ``ask``
callable is given: one pool of (battle, tagger) jobs for all of them, read ahead and written
behind, keeps ``concurrency`` calls in flight from the first to the last (a failed call
becomes an ``error`` tag that the next run retries, never a crash); the labeller model is
part of their stored versions, so another model re-labels. Then dedup over all prompt
hashes, then the anomalous-voter screen when that module is installed. A run that changed
tags marks the published leaderboard stale (the screen does so for flags), so the live board
and its category list are recomputed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from arena.pipeline import dedup
from arena.pipeline.labelling import DEFAULT_CONCURRENCY, Ask, run_labellers
from arena.pipeline.run_progress import DEFAULT_BATCH, Progress, TaggerCounts, tagger_key
from arena.pipeline.tagging_pool import TaggingPool
from arena.pipeline.tags import DeterministicTagger, LabellerTagger, Tag
from arena.store import battle_tags as store
from arena.store.db import Database
from arena.store.leaderboard_sets import mark_pipeline_changed

log = logging.getLogger(__name__)

NO_LABELLER = "no labeller model configured (arena pipeline run --labeller MODEL)"
VOTER_SCREEN_MODULE = "arena.pipeline.voter_screen"


@dataclass(frozen=True)
class DedupSummary:
    battles: int
    high_freq: int
    not_sampled: int
    written: int


@dataclass(frozen=True)
class PipelineReport:
    """Per-tagger counts, taggers skipped (and why), the dedup summary and the voter screen."""

    taggers: dict[str, TaggerCounts]
    skipped: dict[str, str] = field(default_factory=dict)
    dedup: DedupSummary | None = None
    voter_screen: Any = None
    voter_screen_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        screen = self.voter_screen
        if screen is not None and hasattr(screen, "to_dict"):
            screen = screen.to_dict()
        elif screen is not None and hasattr(screen, "__dataclass_fields__"):
            screen = asdict(screen)
        return {
            "taggers": {
                name: {k: v for k, v in asdict(c).items() if k != "with_prompts"}
                for name, c in self.taggers.items()
            },
            "skipped": dict(self.skipped),
            "dedup": asdict(self.dedup) if self.dedup else None,
            "voter_screen": screen if screen is None or isinstance(screen, dict) else str(screen),
            "voter_screen_note": self.voter_screen_note,
        }


def _start_counts(db: Database, taggers: Sequence, with_prompts: int) -> dict[str, TaggerCounts]:
    return {
        t.name: TaggerCounts(
            up_to_date=with_prompts - store.count_needing(db, tagger_key(t)),
            with_prompts=with_prompts,
        )
        for t in taggers
    }


def _todo(db: Database, counts: dict[str, TaggerCounts], tagger: Any) -> int:
    """Battles this tagger still has to tag (from the run's starting counts when known)."""
    counted = counts.get(tagger.name)
    if counted is not None and counted.with_prompts is not None:
        return counted.with_prompts - counted.up_to_date
    return store.count_needing(db, tagger_key(tagger))


def run_deterministic(
    db: Database,
    taggers: Sequence[DeterministicTagger],
    counts: dict[str, TaggerCounts],
    progress: Progress,
    *,
    batch_size: int = DEFAULT_BATCH,
    workers: int = 1,
) -> None:
    """Tag, batch by batch, every battle lacking one of these taggers' current tags."""
    keys = [tagger_key(t) for t in taggers]
    progress.phase("deterministic tags", max(_todo(db, counts, t) for t in taggers))
    after: str | None = None
    with TaggingPool(taggers, workers) as pool:
        while ids := store.battles_needing(db, keys, after=after, limit=batch_size):
            records = store.prompt_records(db, ids)
            have = store.current_keys(db, ids, keys)
            rows: list[dict[str, Any]] = []
            for index, battle_id, tags in pool.tag(records, have):
                tagger = taggers[index]
                counts[tagger.name].count(tags)
                rows += store.tag_rows(battle_id, tags, tagger=tagger.name, version=tagger.version)
            store.upsert_tags(db, rows)  # one commit per batch: a killed run resumes here
            progress.advance(len(ids))
            after = ids[-1]


async def _label_then_close(
    labelling: Awaitable[None], close: Callable[[], Awaitable[None]] | None
) -> None:
    """Label, then close the labeller's clients on the loop that used them."""
    try:
        await labelling
    finally:
        if close is not None:
            await close()


def run_dedup(db: Database) -> DedupSummary:
    """Recompute dedup tags from every prompt hash; write only those that changed."""
    hashes = (
        (battle_id, value)
        for battle_id, value, _version, status in store.iter_tag_values(db, "prompt_hash")
        if status == "ok" and isinstance(value, str)
    )
    computed = dedup.dedup_tags(hashes)
    stored = {
        battle_id: (value, version)
        for battle_id, value, version, _status in store.iter_tag_values(db, dedup.DEDUP_TAG)
    }
    changes = dedup.changed(computed, stored)
    rows = [
        row
        for battle_id, value in changes.items()
        for row in store.tag_rows(
            battle_id,
            [Tag(dedup.DEDUP_TAG, value)],
            tagger=dedup.DEDUP_TAGGER,
            version=dedup.DEDUP_VERSION,
        )
    ]
    for start in range(0, len(rows), 5000):
        store.upsert_tags(db, rows[start : start + 5000])
    return DedupSummary(
        battles=len(computed),
        high_freq=sum(v["high_freq"] for v in computed.values()),
        not_sampled=sum(not v["sampled"] for v in computed.values()),
        written=len(rows),
    )


def run_voter_screen(db: Database, **options: Any) -> tuple[Any, str]:
    """The anomalous-voter screen's report, when its module is installed (``options``: its
    ``alpha`` and ``min_votes``). The screen marks the pipeline changed itself when the
    flags change."""
    if importlib.util.find_spec(VOTER_SCREEN_MODULE) is None:
        return None, "anomalous-voter screen not installed; skipped"
    module = importlib.import_module(VOTER_SCREEN_MODULE)
    try:
        return module.run_voter_screen(db, **options), "anomalous-voter screen ran"
    except Exception as e:  # the tags are written; the flags stay as they were
        log.exception("the anomalous-voter screen failed")
        return None, f"anomalous-voter screen failed ({type(e).__name__}: {e}); flags unchanged"


def run_pipeline(
    db: Database,
    *,
    taggers: Sequence[DeterministicTagger] | None = None,
    labellers: Sequence[LabellerTagger] = (),
    ask: Ask | None = None,
    close_ask: Callable[[], Awaitable[None]] | None = None,
    labeller_model: str | None = None,
    no_labeller_reason: str = NO_LABELLER,
    concurrency: int = DEFAULT_CONCURRENCY,
    batch_size: int = DEFAULT_BATCH,
    workers: int = 1,
    progress: bool = False,
    with_dedup: bool = True,
    with_voter_screen: bool = True,
    screen_options: dict[str, Any] | None = None,
) -> PipelineReport:
    """One pipeline run over the store (see the module docstring); returns its report.
    ``labeller_model``: the model behind ``ask``; it goes into the LLM tags' versions, so
    another model re-labels. ``screen_options``: ``alpha``/``min_votes`` of the voter screen."""
    if taggers is None:
        from arena.pipeline.taggers import DETERMINISTIC_TAGGERS

        taggers = DETERMINISTIC_TAGGERS
    with_prompts = store.count_with_prompts(db)
    counts = _start_counts(db, taggers, with_prompts)
    skipped: dict[str, str] = {}
    active_labellers = list(labellers) if ask is not None else []
    if ask is None:
        skipped = {t.name: no_labeller_reason for t in labellers}
    if labeller_model is not None:
        from arena.pipeline.labeller import for_model

        active_labellers = list(for_model(active_labellers, labeller_model))
    with Progress(progress) as bar:
        if taggers:
            run_deterministic(db, taggers, counts, bar, batch_size=batch_size, workers=workers)
        if active_labellers and ask is not None:
            labelling = run_labellers(
                db,
                active_labellers,
                ask,
                counts,
                bar,
                concurrency=concurrency,
                batch_size=batch_size,
                with_prompts=with_prompts,
            )
            asyncio.run(_label_then_close(labelling, close_ask))
    summary = run_dedup(db) if with_dedup else None
    screen, note = (
        run_voter_screen(db, **(screen_options or {}))
        if with_voter_screen
        else (None, "not requested")
    )
    if any(c.tagged for c in counts.values()) or (summary is not None and summary.written):
        # The live leaderboard reads tags (and flags: the screen marks those itself).
        mark_pipeline_changed(db)
    return PipelineReport(counts, skipped, summary, screen, note)
