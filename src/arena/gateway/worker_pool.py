"""The gateway's in-memory view of registered workers, refreshed from the database.

The database (``arena.store.workers``) is the shared truth across gateway replicas; this
pool mirrors it every ``refresh_s`` so that dispatch never touches the database on the
request path. It also keeps what only this process knows: requests in flight per worker
and workers that just failed (tried last for a short while).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from arena.gateway import dispatch
from arena.providers.base import Provider

log = logging.getLogger("arena.gateway.workers")

# Builds the client for one (worker, model): an OpenAI-compatible provider at worker.url.
ProviderFactory = Callable[[Any, str], Provider]


class WorkerPool:
    def __init__(
        self,
        db: Any,
        *,
        provider_factory: ProviderFactory,
        policy: str = "shortest_queue",
        expiry_s: float = 45.0,
        refresh_s: float = 1.0,
        failure_cooldown_s: float = 5.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy not in dispatch.POLICIES:
            raise ValueError(f"unknown dispatch policy {policy!r}")
        self.db = db
        self.policy = policy
        self.expiry_s = expiry_s
        self.refresh_s = refresh_s
        self.failure_cooldown_s = failure_cooldown_s
        self._factory = provider_factory
        self._rng = rng or random.Random()
        self._clock = clock
        self._workers: dict[str, Any] = {}
        self._by_model: dict[str, list[str]] = {}
        self._providers: dict[tuple[str, str, str], Provider] = {}
        self._in_flight: dict[str, int] = {}
        self._failed_until: dict[str, float] = {}
        self._retired: list[Provider] = []

    # ------------------------------------------------------------ view of the registry

    def _rebuild_index(self) -> None:
        by_model: dict[str, list[str]] = {}
        for worker_id, info in self._workers.items():
            for name in info.model_names:
                by_model.setdefault(name, []).append(worker_id)
        self._by_model = by_model
        stale = [
            k
            for k in self._providers
            if k[0] not in self._workers or self._workers[k[0]].url != k[1]
        ]
        for key in stale:
            self._retired.append(self._providers.pop(key))

    def set_workers(self, infos: list[Any]) -> None:
        self._workers = {info.worker_id: info for info in infos}
        self._rebuild_index()

    def upsert(self, info: Any) -> None:
        self._workers[info.worker_id] = info
        self._failed_until.pop(info.worker_id, None)
        self._rebuild_index()

    def forget(self, worker_id: str) -> None:
        if self._workers.pop(worker_id, None) is not None:
            self._rebuild_index()

    def note_heartbeat(self, worker_id: str, *, queue_length: int, healthy: bool) -> None:
        info = self._workers.get(worker_id)
        if info is None:
            return
        from dataclasses import replace

        self._workers[worker_id] = replace(info, queue_length=queue_length, healthy=healthy)

    async def refresh(self) -> None:
        from arena.store.workers import live_workers

        infos = await run_in_threadpool(live_workers, self.db, expiry_s=self.expiry_s)
        self.set_workers(infos)
        await self._close_retired()

    async def expire(self) -> int:
        from arena.store.workers import expire_workers

        return await run_in_threadpool(expire_workers, self.db, expiry_s=self.expiry_s)

    async def run(self) -> None:
        """Refresh forever (cancel to stop); also deletes expired rows now and then."""
        last_expire = 0.0
        while True:
            try:
                await self.refresh()
                if self._clock() - last_expire >= self.expiry_s:
                    last_expire = self._clock()
                    gone = await self.expire()
                    if gone:
                        log.info("expired %d silent worker(s)", gone)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("refreshing the worker registry failed; keeping the last view")
            await asyncio.sleep(self.refresh_s)

    async def _close_retired(self) -> None:
        retired, self._retired = self._retired, []
        for provider in retired:
            try:
                await provider.aclose()
            except Exception:
                log.warning("closing a retired worker client failed", exc_info=True)

    async def aclose(self) -> None:
        self._retired.extend(self._providers.values())
        self._providers.clear()
        await self._close_retired()

    # ------------------------------------------------------------ dispatch

    def models(self) -> dict[str, list[Any]]:
        return {m: [self._workers[w] for w in ids] for m, ids in self._by_model.items()}

    def counts(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for model, ids in self._by_model.items():
            healthy = sum(1 for w in ids if self._workers[w].healthy)
            out[model] = (healthy, len(ids) - healthy)
        return out

    def serves(self, model: str) -> bool:
        return model in self._by_model

    def provider(self, worker_id: str, model: str) -> Provider:
        info = self._workers[worker_id]
        key = (worker_id, info.url, model)
        provider = self._providers.get(key)
        if provider is None:
            provider = self._providers[key] = self._factory(info, model)
        return provider

    def ordered(self, model: str) -> list[str]:
        """Worker ids for ``model`` in the order to try them (healthy, not just failed, first)."""
        ids = self._by_model.get(model, [])
        now = self._clock()
        fresh: list[dispatch.Candidate] = []
        failed: list[dispatch.Candidate] = []
        for worker_id in ids:
            info = self._workers[worker_id]
            candidate = dispatch.Candidate(
                key=worker_id,
                queue_length=info.queue_length,
                in_flight=self._in_flight.get(worker_id, 0),
                weight=info.weight,
            )
            if info.healthy and self._failed_until.get(worker_id, 0.0) <= now:
                fresh.append(candidate)
            else:
                failed.append(candidate)
        ordered = dispatch.order(self.policy, fresh, self._rng)
        ordered += dispatch.shortest_queue(failed, self._rng)
        return [c.key for c in ordered]

    def acquire(self, worker_id: str) -> None:
        self._in_flight[worker_id] = self._in_flight.get(worker_id, 0) + 1

    def release(self, worker_id: str) -> None:
        left = self._in_flight.get(worker_id, 0) - 1
        if left > 0:
            self._in_flight[worker_id] = left
        else:
            self._in_flight.pop(worker_id, None)

    def mark_failed(self, worker_id: str) -> None:
        self._failed_until[worker_id] = self._clock() + self.failure_cooldown_s
