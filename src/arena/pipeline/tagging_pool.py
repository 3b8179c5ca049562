"""Deterministic tagging of one batch of battles, in this process or spread over worker
processes (language identification is pure Python: about a millisecond per prompt, so a
million battles take most of an hour on one core).

Taggers that cannot travel to another process (closures, such as a moderation word list
built at run time) run here; the others run in the workers. Results are the same either way.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from arena.pipeline.tags import DeterministicTagger, PromptRecord, Tag

Result = tuple[int, str, list[Tag]]  # (tagger index, battle id, its tags)


def error_tags(tagger: Any, error: BaseException) -> list[Tag]:
    """The tags of a tagger that failed on one battle (retried by the next run)."""
    detail = f"{type(error).__name__}: {error}"[:500]
    return [Tag(name, None, "error", detail) for name in tagger.tag_names]


def tag_records(
    taggers: Sequence[tuple[int, DeterministicTagger]],
    records: Sequence[PromptRecord],
    have: set[tuple[str, str]],
) -> list[Result]:
    """Run each tagger on each record that lacks its current tag (``have``)."""
    out: list[Result] = []
    for index, tagger in taggers:
        for record in records:
            if (record.battle_id, tagger.tag_names[0]) in have:
                continue
            try:
                tags = list(tagger.run(record))
            except Exception as e:  # one odd prompt must not stop a million
                tags = error_tags(tagger, e)
            out.append((index, record.battle_id, tags))
    return out


def _portable(tagger: DeterministicTagger) -> bool:
    try:
        pickle.dumps(tagger)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


class TaggingPool:
    """Tags batches with ``workers`` processes (1: all in this process)."""

    def __init__(self, taggers: Sequence[DeterministicTagger], workers: int = 1) -> None:
        indexed = list(enumerate(taggers))
        self._workers = max(1, workers)
        if self._workers > 1:
            self._remote = [(i, t) for i, t in indexed if _portable(t)]
            self._local = [(i, t) for i, t in indexed if (i, t) not in self._remote]
        else:
            self._remote, self._local = [], indexed
        self._executor: Executor | None = None

    def __enter__(self) -> TaggingPool:
        if self._remote:
            self._executor = ProcessPoolExecutor(max_workers=self._workers)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None

    def tag(self, records: Sequence[PromptRecord], have: set[tuple[str, str]]) -> list[Result]:
        futures = []
        if self._executor is not None:
            size = max(1, -(-len(records) // self._workers))
            for start in range(0, len(records), size):
                chunk = records[start : start + size]
                ids = {r.battle_id for r in chunk}
                mine = {pair for pair in have if pair[0] in ids}
                futures.append(self._executor.submit(tag_records, self._remote, chunk, mine))
        out = tag_records(self._local, records, have)
        for future in futures:
            out.extend(future.result())
        return out
