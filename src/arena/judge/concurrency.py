"""Run many independent jobs with at most N in flight, with an optional Rich progress bar.

A fixed pool of N workers pulls jobs from one iterator, so memory stays flat however many
jobs there are and no job waits behind a semaphore it will not get for minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def run_bounded(
    jobs: Iterable[T],
    handle: Callable[[T], Awaitable[None]],
    *,
    concurrency: int,
    total: int | None = None,
    description: str = "working",
    show_progress: bool = True,
) -> None:
    """Call ``handle`` on every job, ``concurrency`` at a time; exceptions propagate.

    ``handle`` is expected to record its own failures; one escaping here is a bug, and the
    remaining workers are cancelled so it surfaces at once.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    iterator = iter(jobs)
    progress = None
    task_id = None
    if show_progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        progress.start()
        task_id = progress.add_task(description, total=total)

    async def worker() -> None:
        for job in iterator:
            await handle(job)
            if progress is not None and task_id is not None:
                progress.advance(task_id)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    finally:
        if progress is not None:
            progress.stop()
