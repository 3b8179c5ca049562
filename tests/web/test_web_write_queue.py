"""The SQLite writer queue: one holder at a time, votes before queued message writes,
and a cancelled waiter never leaves the lock held."""

from __future__ import annotations

import asyncio

from arena.web.write_queue import MESSAGE, VOTE, PriorityGate


async def test_votes_jump_the_queue_and_holders_never_overlap():
    lock = PriorityGate()
    order: list[str] = []
    holding = 0

    async def write(name: str, priority: int) -> None:
        nonlocal holding
        async with lock.hold(priority):
            holding += 1
            assert holding == 1
            order.append(name)
            await asyncio.sleep(0.01)
            holding -= 1

    first = asyncio.create_task(write("m0", MESSAGE))
    await asyncio.sleep(0)  # m0 holds the lock
    tasks = [asyncio.create_task(write(f"m{i}", MESSAGE)) for i in (1, 2)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(write("vote", VOTE)))
    await asyncio.gather(first, *tasks)
    assert order == ["m0", "vote", "m1", "m2"]


async def test_cancelled_waiter_releases_its_turn():
    lock = PriorityGate()
    release = asyncio.Event()

    async def holder() -> None:
        async with lock.hold():
            await release.wait()

    async def waiter() -> None:
        async with lock.hold(VOTE):
            pass

    h = asyncio.create_task(holder())
    await asyncio.sleep(0)
    w = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    w.cancel()
    release.set()
    await h
    await asyncio.gather(w, return_exceptions=True)
    async with asyncio.timeout(1):
        async with lock.hold():
            pass
