"""Store calls from the event loop: each runs in a worker thread, queued through priority
gates (``write_queue``) sized for the database's backend, votes ahead of message writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from arena.store.db import Database
from arena.web.write_queue import MESSAGE, PriorityGate

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))


class StoreCalls:
    """The one way the web layer reaches the (synchronous) store."""

    def __init__(self, db: Database, *, concurrency: int) -> None:
        self.db = db
        if db.is_sqlite:
            # One writer at a time. WAL readers never block each other, but each one holds
            # a thread that fights the event loop for the GIL: a few at a time. A vote
            # reads inside its own write transaction.
            self._write_gate = PriorityGate(1)
            self._read_gate = PriorityGate(concurrency)
        else:
            # Reads and writes share the connection pool; queue them all, votes first.
            gate = PriorityGate(concurrency)
            self._write_gate, self._read_gate = gate, gate

    async def write(
        self, fn: Callable[..., T], *args: Any, priority: int = MESSAGE, **kwargs: Any
    ) -> T:
        """A store write, through the priority queue (votes first)."""
        async with self._write_gate.hold(priority):
            return await in_thread(fn, *args, **kwargs)

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._read_gate.hold(MESSAGE):
            return await in_thread(fn, *args, **kwargs)
