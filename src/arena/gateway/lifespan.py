"""The gateway app's lifespan: start-up and shutdown hooks, the worker pool's refresh loop and
other background tasks, and closing the providers at the end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI

from arena.gateway.app_state import Gateway
from arena.gateway.routing import ModelRouter

log = logging.getLogger("arena.gateway")


def gateway_lifespan(
    gateway: Gateway,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Background tasks (``gateway.background``) are cancelled and awaited before the
    providers close; shutdown hooks run last, each even if another failed."""
    router = gateway.router

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in gateway.on_startup:
            await hook()
        if router.pool is not None:
            await _refresh_quietly(router)
            gateway.background.append(asyncio.create_task(router.pool.run()))
        gateway.serving = True
        try:
            yield
        finally:
            gateway.serving = False
            for task in gateway.background:
                task.cancel()
            for task in gateway.background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            gateway.background.clear()
            await router.aclose()
            for hook in gateway.on_shutdown:
                try:
                    await hook()
                except Exception:
                    log.exception("a shutdown hook failed")

    return lifespan


async def _refresh_quietly(router: ModelRouter) -> None:
    assert router.pool is not None
    try:
        await router.pool.refresh()
    except Exception:
        log.exception("reading the worker registry at start failed; will retry")
