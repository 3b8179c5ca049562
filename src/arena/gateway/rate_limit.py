"""Per-key request and token limits (``limits`` moving windows; memory or Redis storage).

Requests per minute are counted when a request arrives. Tokens per minute are counted
after the answer, from its usage; a request is refused while the key's token window is
used up. An answer that overshoots the remaining budget fills the window (the overshoot
itself is not carried over), so the next request waits for the window to move.
"""

from __future__ import annotations

import time

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter

from arena.counter_storage import counter_storage
from arena.errors import RateLimited
from arena.gateway.auth import Caller


class KeyRateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        self._storage = counter_storage(redis_url)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._items: dict[tuple[str, int], RateLimitItemPerMinute] = {}

    def _item(self, kind: str, amount: int) -> RateLimitItemPerMinute:
        item = self._items.get((kind, amount))
        if item is None:
            item = self._items[(kind, amount)] = RateLimitItemPerMinute(amount, namespace=kind)
        return item

    async def _retry_after(self, item: RateLimitItemPerMinute, key: str) -> float:
        stats = await self._limiter.get_window_stats(item, key)
        return max(0.0, stats.reset_time - time.time())

    async def check_request(self, caller: Caller) -> None:
        """Count one request; raise ``RateLimited`` when a per-minute limit is reached."""
        if caller.key_id is None:
            return
        if caller.rpm_limit:
            item = self._item("rpm", caller.rpm_limit)
            if not await self._limiter.hit(item, caller.key_id):
                raise RateLimited(
                    f"rate limit of {caller.rpm_limit} requests per minute reached for this key",
                    retry_after_s=await self._retry_after(item, caller.key_id),
                )
        if caller.tpm_limit:
            item = self._item("tpm", caller.tpm_limit)
            if not await self._limiter.test(item, caller.key_id):
                raise RateLimited(
                    f"rate limit of {caller.tpm_limit} tokens per minute reached for this key",
                    retry_after_s=await self._retry_after(item, caller.key_id),
                )

    async def record_tokens(self, caller: Caller, tokens: int) -> None:
        if caller.key_id is None or not caller.tpm_limit or tokens <= 0:
            return
        item = self._item("tpm", caller.tpm_limit)
        stats = await self._limiter.get_window_stats(item, caller.key_id)
        cost = min(tokens, stats.remaining)
        if cost > 0:
            await self._limiter.hit(item, caller.key_id, cost=cost)
