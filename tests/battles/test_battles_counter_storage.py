"""The in-process counter storage: limits hold between sweeps, and sweeps free memory."""

from __future__ import annotations

import asyncio

import pytest
from limits import RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from arena.counter_storage import LazilySweptMemoryStorage, counter_storage


async def test_moving_window_counts_right_without_a_sweep() -> None:
    storage = LazilySweptMemoryStorage(sweep_interval_s=3600)
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(2)
    assert await limiter.hit(item, "k")
    assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")
    await asyncio.sleep(1.05)  # the window moved on; no sweep has run since the first hit
    assert await limiter.hit(item, "k")
    stats = await limiter.get_window_stats(item, "k")
    assert stats.remaining == 1


async def test_fixed_window_counts_right_without_a_sweep() -> None:
    storage = LazilySweptMemoryStorage(sweep_interval_s=3600)
    limiter = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(1)
    assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")
    await asyncio.sleep(1.05)
    assert await limiter.hit(item, "k")


async def test_sweep_drops_expired_entries_and_keeps_live_ones() -> None:
    storage = LazilySweptMemoryStorage(sweep_interval_s=3600)
    moving = MovingWindowRateLimiter(storage)
    fixed = FixedWindowRateLimiter(storage)
    short, long = RateLimitItemPerSecond(5, 1), RateLimitItemPerSecond(5, 60)
    for key in ("a", "b", "c"):
        await moving.hit(short, key)
        await fixed.hit(short, key)
    await moving.hit(long, "d")
    await asyncio.sleep(1.05)
    storage.sweep()
    assert len(storage.events) == 1  # only "d"'s minute-long window is still live
    assert storage.expirations == {}
    assert await moving.test(long, "d")
    assert (await moving.get_window_stats(long, "d")).remaining == 4


async def test_sweeps_run_at_most_once_per_interval() -> None:
    storage = LazilySweptMemoryStorage(sweep_interval_s=3600)
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(100, 1)
    sweeps = 0
    original = storage.sweep

    def counting_sweep() -> None:
        nonlocal sweeps
        sweeps += 1
        original()

    storage.sweep = counting_sweep  # type: ignore[method-assign]
    for i in range(500):
        await limiter.hit(item, f"session-{i}")
    assert sweeps == 1


def test_uris() -> None:
    assert isinstance(counter_storage(None), LazilySweptMemoryStorage)
    assert isinstance(counter_storage("memory://"), LazilySweptMemoryStorage)
    assert isinstance(counter_storage("async+memory://"), LazilySweptMemoryStorage)
    with pytest.raises(ValueError, match="not a URL"):
        counter_storage("localhost:6379")
