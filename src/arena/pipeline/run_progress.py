"""What a pipeline run counts and shows: per-tagger counts and the progress bar."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from arena.pipeline.tags import DeterministicTagger, LabellerTagger, Tag
from arena.store import battle_tags as store

DEFAULT_BATCH = 500


@dataclass
class TaggerCounts:
    """What one tagger did in a run (battles)."""

    tagged: int = 0
    up_to_date: int = 0
    unparsable: int = 0
    errors: int = 0
    with_prompts: int | None = field(default=None, repr=False, compare=False)

    def count(self, tags: Sequence[Tag]) -> None:
        statuses = {t.status for t in tags}
        if "error" in statuses:
            self.errors += 1
        elif "unparsable" in statuses:
            self.unparsable += 1
        self.tagged += 1


class Progress:
    """A Rich progress bar on stderr, or nothing (tests, ``--no-progress``)."""

    def __init__(self, enabled: bool) -> None:
        self._bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    @property
    def enabled(self) -> bool:
        return self._bar is not None

    def phase(self, description: str, total: int | None) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task(description, total=total)

    def total(self, total: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def advance(self, n: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)


def tagger_key(tagger: DeterministicTagger | LabellerTagger) -> store.TaggerKey:
    return (tagger.tag_names[0], tagger.version)
