"""Where rate-limit counters live: this process's memory, or Redis shared by every replica.

The gateway's per-key limits and the arena's per-session and per-IP limits both count with
the `limits` library; this module picks its storage from a URI (``memory://``,
``redis://host:port``, ``rediss://…``, ``redis+sentinel://…``).

In memory, `limits` sweeps expired entries after nearly every hit, and its async sweep hops
to a worker thread once per key. With a few hundred arena sessions that sweep cost more CPU
than the requests being limited. Counting never depends on the sweep (every check compares
the entries' own timestamps), the sweep only frees memory, so here it runs at most once per
``sweep_interval_s``, on the event loop.
"""

from __future__ import annotations

import bisect
import time

from limits.aio.storage import MemoryStorage, Storage
from limits.storage import storage_from_string


class LazilySweptMemoryStorage(MemoryStorage):
    """`limits`' in-process async storage with a cheap, infrequent expiry sweep."""

    def __init__(self, *, sweep_interval_s: float = 5.0) -> None:
        super().__init__()
        self.sweep_interval_s = sweep_interval_s
        self._next_sweep = 0.0

    # The base class calls these two under their name-mangled names.
    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval_s
        self.sweep()

    async def _MemoryStorage__expire_events(self) -> None:
        self.sweep()

    def sweep(self) -> None:
        """Drop expired moving-window entries and fixed-window counters now. Runs without
        awaiting, so no other coroutine sees a half-swept key."""
        now = time.time()
        for key in list(self.events):
            events = self.events[key]
            # Entries are kept newest first, so the expired ones are a suffix.
            keep = bisect.bisect_left(events, -now, key=lambda entry: -entry.expiry)
            if keep:
                del events[keep:]
            elif not self.locks[key].locked():
                del self.events[key]
                self.locks.pop(key, None)
        for key, expires_at in list(self.expirations.items()):
            if expires_at <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                if not self.locks[key].locked():
                    self.locks.pop(key, None)


def counter_storage(uri: str | None, *, key_prefix: str | None = None) -> Storage:
    """The storage a URI names; ``None`` or ``memory://`` is this process's memory.

    ``key_prefix`` keeps this limiter's Redis keys apart from everyone else's, so that
    resetting it never touches other users of the same Redis.
    """
    if not uri:
        return LazilySweptMemoryStorage()
    uri = uri.removeprefix("async+")
    scheme, sep, _ = uri.partition("://")
    if not sep:
        raise ValueError(f"rate-limit storage {uri!r} is not a URL")
    if scheme == "memory":
        return LazilySweptMemoryStorage()
    options: dict[str, str] = {}
    if scheme.startswith("redis"):
        # The `redis` package (redis-py) is the client we install; limits defaults to coredis.
        options["implementation"] = "redispy"
        if key_prefix:
            options["key_prefix"] = key_prefix
    storage = storage_from_string(f"async+{uri}", **options)
    assert isinstance(storage, Storage)
    return storage
