"""The labeller (LLM) taggers' loop: one pool of (battle, tagger) jobs for all of them.

A producer reads battles ahead, ``concurrency`` workers each make one call at a time (a gate
of as many slots bounds them whatever a tagger does), and tags are written behind in batches,
so calls stay in flight from the first to the last; a failed call becomes an ``error`` tag
(retried next run), never a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from arena.pipeline.run_progress import DEFAULT_BATCH, Progress, TaggerCounts, tagger_key
from arena.pipeline.tagging_pool import error_tags
from arena.pipeline.tags import LabellerTagger, PromptRecord, Tag
from arena.store import battle_tags as store
from arena.store.db import Database

Ask = Callable[[str], Awaitable[str]]
DEFAULT_CONCURRENCY = 16


async def label(tagger: LabellerTagger, record: PromptRecord, ask: Ask) -> list[Tag]:
    """One labeller tagger on one battle; a failure becomes ``error`` tags, never a raise."""
    try:
        tags = list(await tagger.run(record, ask))
    except Exception as e:  # a labeller failure is recorded, and retried next run
        return error_tags(tagger, e)
    return tags or error_tags(tagger, ValueError("the tagger returned no tags"))


async def label_one(
    tagger: LabellerTagger, record: PromptRecord, ask: Ask, gate: asyncio.Semaphore
) -> list[Tag]:
    async with gate:
        return await label(tagger, record, ask)


def _read_page(
    db: Database, keys: list[store.TaggerKey], after: str | None, size: int
) -> tuple[list[str], list[PromptRecord], set[tuple[str, str]]]:
    """The next battles lacking any of ``keys``: ids, prompts and the tags they already have."""
    ids = store.battles_needing(db, keys, after=after, limit=size)
    if not ids:
        return [], [], set()
    return ids, store.prompt_records(db, ids), store.current_keys(db, ids, keys)


class _LabelRun:
    """One labelling run: a producer reads battles ahead into a queue of (tagger, battle)
    jobs for all taggers at once; ``concurrency`` workers take jobs and call the labeller;
    tags are written behind in batches (one write at a time, off the event loop).

    Each worker issues its next call in the same step that read its last verdict (tens of
    microseconds of work), so a slot never waits for another task to be woken; the gate
    only enforces the bound should a tagger ask several times at once. The producer tops the
    queue up a page at a time, when at most one page of jobs is left, rather than waking for
    every job taken."""

    def __init__(self, db, taggers, ask, concurrency, batch_size, progress) -> None:
        self.db, self.taggers, self.ask, self.progress = db, list(taggers), ask, progress
        self.keys = [tagger_key(t) for t in self.taggers]
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.workers = max(1, concurrency)
        self.batch_size = max(1, batch_size)
        self.page = max(batch_size, 4 * self.workers)
        self.jobs: asyncio.Queue = asyncio.Queue()
        # Read the next page once no more than a page of jobs waits: up to two pages queue,
        # so reading never starves the workers.
        self.refill_at = self.page * len(self.taggers)
        self.room = asyncio.Event()
        self.needed = [0] * len(self.taggers)
        self.results: list[TaggerCounts] = [TaggerCounts() for _ in self.taggers]
        self.pending: list[dict[str, Any]] = []
        self.pending_jobs = 0
        self.writing: asyncio.Future[None] | None = None

    async def produce(self) -> None:
        after: str | None = None
        size = 2 * self.workers  # a small first page gets the first calls going at once
        while True:
            ids, records, have = await asyncio.to_thread(
                _read_page, self.db, self.keys, after, size
            )
            if not ids:
                break
            for record in records:
                for index, tagger in enumerate(self.taggers):
                    if (record.battle_id, tagger.tag_names[0]) not in have:
                        self.needed[index] += 1
                        self.jobs.put_nowait((index, record))
            after, size = ids[-1], self.page
            while self.jobs.qsize() > self.refill_at:
                self.room.clear()
                await self.room.wait()
        for _ in range(self.workers):
            self.jobs.put_nowait(None)

    async def work(self) -> None:
        while (job := await self.jobs.get()) is not None:
            if self.jobs.qsize() <= self.refill_at:
                self.room.set()
            index, record = job
            tagger = self.taggers[index]
            tags = await label(tagger, record, self.gated_ask)
            self.results[index].count(tags)
            self.pending += store.tag_rows(
                record.battle_id, tags, tagger=tagger.name, version=tagger.version
            )
            self.pending_jobs += 1
            if self.pending_jobs >= self.batch_size:
                await self.flush(wait=False)
        # No job left: write what is pending while the last calls finish, so the final
        # write after them is small.
        await self.flush(wait=False)

    async def gated_ask(self, prompt: str) -> str:
        async with self.slots:
            return await self.ask(prompt)

    async def flush(self, *, wait: bool) -> None:
        """Start writing the pending tags, unless a write is still under way (then they
        join the next one); ``wait``: write everything and wait for it."""
        if self.writing is not None:
            if not (wait or self.writing.done()):
                return
            writing, self.writing = self.writing, None
            await writing  # a failed write raises here
        rows, jobs = self.pending, self.pending_jobs
        self.pending, self.pending_jobs = [], 0
        if rows:
            self.writing = asyncio.ensure_future(
                asyncio.to_thread(store.upsert_tags, self.db, rows)
            )
            self.progress.advance(jobs)
        if wait and self.writing is not None:
            writing, self.writing = self.writing, None
            await writing

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.produce())
                for _ in range(self.workers):
                    group.create_task(self.work())
        except BaseExceptionGroup as failed:  # say what failed (a database error, say)
            raise failed.exceptions[0] from None
        finally:
            await self.flush(wait=True)  # a tag labelled is a tag kept, even when stopping


async def run_labellers(
    db: Database,
    taggers: Sequence[LabellerTagger],
    ask: Ask,
    counts: dict[str, TaggerCounts],
    progress: Progress,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    batch_size: int = DEFAULT_BATCH,
    with_prompts: int | None = None,
) -> None:
    """Label every battle lacking a current tag of any of ``taggers``, with ``concurrency``
    calls in flight from the first to the last (all taggers share the workers), and put each
    tagger's counts in ``counts`` (``with_prompts``: battles with prompts, when known)."""
    if with_prompts is None:
        with_prompts = await asyncio.to_thread(store.count_with_prompts, db)
    sizing: asyncio.Future[int] | None = None
    if progress.enabled:  # the bar's total is counted beside the labelling, not before it
        progress.phase("LLM tags (labeller)", None)
        sizing = asyncio.ensure_future(
            asyncio.to_thread(lambda: sum(store.count_needing(db, tagger_key(t)) for t in taggers))
        )
        sizing.add_done_callback(
            lambda f: f.cancelled() or f.exception() or progress.total(f.result())
        )
    labelling = _LabelRun(db, taggers, ask, concurrency, batch_size, progress)
    try:
        await labelling.run()
    finally:
        if sizing is not None:
            await asyncio.wait([sizing])
        for tagger, needed, result in zip(
            taggers, labelling.needed, labelling.results, strict=True
        ):
            result.up_to_date = with_prompts - needed
            counts[tagger.name] = result
