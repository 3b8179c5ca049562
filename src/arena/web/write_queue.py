"""Database access in priority order: votes first, at most ``capacity`` calls at once.

SQLite takes one writer at a time: waiting here (a coroutine, holding no thread) is cheaper
and fairer than waiting in SQLite's busy handler, whose back-off sleeps grow to 100 ms.
PostgreSQL takes many, but the connection pool and the worker threads are finite: without a
queue of our own, a vote would wait behind every queued message write. In both cases a
vote — the one write a user waits on — goes ahead of everything queued.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

VOTE = 0
MESSAGE = 1


class PriorityGate:
    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._holders = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def _release(self) -> None:
        while self._waiters:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)  # the slot passes straight to this waiter
                return
        self._holders -= 1

    @asynccontextmanager
    async def hold(self, priority: int = MESSAGE) -> AsyncIterator[None]:
        if self._holders < self.capacity and not self._waiters:
            self._holders += 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (priority, next(self._order), future))
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()  # we were handed a slot as we were cancelled
                raise
        try:
            yield
        finally:
            self._release()
