"""Which arena models are in outage, so that the pair sampler gives them no battles.

Every ``interval_s`` each provider's ``health()`` is probed (all at once, each within
``timeout_s``; an exception or a timeout counts as unhealthy). A local model that has not
loaded yet starts in outage; its probe loads it in the background.

An answer in a *named* chat (side by side, direct) that fails because the backend is down or
too slow (not a refusal of that one request) puts its model in outage at once, until the
next probe round finds it healthy again. Failures in anonymous battles are never reported
here: the outage set shows in ``/api/models`` and the side-by-side picker, so a change
that followed a battle's failure would name the failed model before the vote. Their models
go into outage only through the probes, whose schedule no battle moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from arena.providers.base import Provider

log = logging.getLogger("arena.web.health")

# Side-error kinds (arena.web.streaming.public_error) that say the backend is unwell.
OUTAGE_KINDS = frozenset({"upstream", "timeout", "unavailable"})


class ModelHealth:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        *,
        interval_s: float = 30.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.providers = providers
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.down: set[str] = {
            name for name, p in providers.items() if getattr(p, "is_loaded", True) is False
        }
        self._task: asyncio.Task[None] | None = None

    def report_failure(self, model: str, kind: str | None) -> None:
        """An answer of ``model`` in a named chat failed; ``kind`` is the side error's kind.
        Never call it for an anonymous battle (see the module docstring)."""
        if kind in OUTAGE_KINDS and model in self.providers and model not in self.down:
            log.warning("model %s is in outage after a failed answer (%s)", model, kind)
            self.down.add(model)

    async def probe_all(self) -> None:
        await asyncio.gather(*(self._probe(name, p) for name, p in self.providers.items()))

    async def _probe(self, name: str, provider: Provider) -> None:
        try:
            healthy = bool(await asyncio.wait_for(provider.health(), self.timeout_s))
        except Exception as e:  # a probe never takes the monitor down
            log.debug("health probe of %s failed: %r", name, e)
            healthy = False
        if healthy and name in self.down:
            log.info("model %s is back", name)
            self.down.discard(name)
        elif not healthy and name not in self.down:
            log.warning("model %s is in outage: its health probe failed", name)
            self.down.add(name)

    async def _run(self) -> None:
        while True:
            await self.probe_all()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Probe now and every ``interval_s`` (call inside the running event loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="arena-model-health")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
