"""``arena worker``: serve one model behind ``/v1`` and keep it registered with gateways.

A worker app *is* a gateway app (``arena.gateway.app.create_gateway_app``) with a single
provider — a local model (``arena.providers.local``) — so it speaks exactly the same API.
``GatewayRegistration`` registers the worker, heartbeats its queue length every
``heartbeat_interval_s`` and registers again whenever the gateway answers that it does not
know the worker (a gateway restarted on a fresh database, or the worker expired).
Given several gateways (``--gateway`` repeated, or URLs separated by commas: the replicas
of one arena), the worker registers and heartbeats with each of them under one worker id,
so its model stays listed while any replica lives; a replica that is down is retried at
every beat without holding up the others.

``--upstream URL`` registers an existing OpenAI-compatible endpoint instead of serving a
model: the process only heartbeats, probing the upstream's ``/models`` for health. The key
the gateway sends to that upstream is the gateway operator's choice (``api_key_env`` of the
model's ``provider: workers`` registry entry, or ``ARENA_WORKER_UPSTREAM_KEYS``); a worker
never names it. ``--upstream-api-key-env`` only lets this process's own probe authenticate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from arena.config import Settings
from arena.providers.base import Provider

log = logging.getLogger("arena.worker")

WORKER_KIND = "arena_worker"
UPSTREAM_KIND = "openai_compatible"


def gateway_root(url: str) -> str:
    """``http://gw:8000/v1/`` -> ``http://gw:8000`` (registration lives outside /v1)."""
    url = url.rstrip("/")
    return url.removesuffix("/v1")


def parse_gateway_urls(values: Iterable[str]) -> list[str]:
    """``--gateway`` values (each may hold several URLs separated by commas), in order,
    without blanks or repeats of the same gateway."""
    urls: list[str] = []
    roots: set[str] = set()
    for value in values:
        for url in value.split(","):
            url = url.strip()
            if url and gateway_root(url) not in roots:
                roots.add(gateway_root(url))
                urls.append(url)
    return urls


def create_worker_app(settings: Settings, provider: Provider, *, model_name: str) -> Any:
    """The worker's ``/v1`` app: the gateway's routes with one provider and no API keys.

    With ``settings.worker_secret`` set, callers (the gateway) must present it."""
    from arena.gateway.app import create_gateway_app
    from arena.gateway.auth import OpenAccess, SharedSecretAccess
    from arena.gateway.routing import ModelRouter

    access = SharedSecretAccess(settings.worker_secret) if settings.worker_secret else OpenAccess()
    return create_gateway_app(
        settings,
        router=ModelRouter({model_name: provider}),
        access=access,
        title=f"Arena worker ({model_name})",
    )


@dataclass
class GatewayRegistration:
    """The worker's side of registration: register, heartbeat, re-register, deregister."""

    gateway_url: str
    worker_id: str
    model_names: list[str]
    url: str
    kind: str = WORKER_KIND
    weight: float = 1.0
    secret: str | None = None
    interval_s: float = 15.0
    meta: dict[str, Any] = field(default_factory=dict)
    queue_length: Callable[[], int] = lambda: 0
    healthy: Callable[[], Awaitable[bool]] | None = None
    client: httpx.AsyncClient | None = None
    registered: bool = False
    registrations: int = 0

    def _headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.secret}"} if self.secret else {}

    def _client(self) -> httpx.AsyncClient:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
        return self.client

    async def register(self) -> None:
        response = await self._client().post(
            f"{gateway_root(self.gateway_url)}/internal/workers/register",
            json={
                "worker_id": self.worker_id,
                "model_names": self.model_names,
                "url": self.url,
                "kind": self.kind,
                "weight": self.weight,
                "queue_length": self.queue_length(),
                "meta": self.meta,
            },
            headers=self._headers(),
        )
        _raise_for(response, "registering")
        self.registered = True
        self.registrations += 1
        log.info(
            "registered worker %s (%s at %s) with %s",
            self.worker_id,
            ", ".join(self.model_names),
            self.url,
            self.gateway_url,
        )

    async def heartbeat(self) -> bool:
        """True if the gateway knows us; False means register again."""
        healthy = True
        if self.healthy is not None:
            try:
                healthy = await self.healthy()
            except Exception:
                healthy = False
        response = await self._client().post(
            f"{gateway_root(self.gateway_url)}/internal/workers/heartbeat",
            json={
                "worker_id": self.worker_id,
                "queue_length": self.queue_length(),
                "healthy": healthy,
            },
            headers=self._headers(),
        )
        if response.status_code == 404:
            return False
        _raise_for(response, "sending a heartbeat")
        return True

    async def step(self) -> None:
        """One beat: register if needed, else heartbeat (registering again if unknown)."""
        if not self.registered:
            await self.register()
            return
        if not await self.heartbeat():
            log.warning("the gateway does not know worker %s; registering again", self.worker_id)
            self.registered = False
            await self.register()

    async def run(self) -> None:
        """Beat forever (cancel to stop). Gateway outages are logged and retried."""
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except (httpx.HTTPError, RegistrationRefused) as e:
                log.warning("gateway %s unreachable or refusing: %s", self.gateway_url, e)
            await asyncio.sleep(self.interval_s)

    async def deregister(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await self._client().post(
                f"{gateway_root(self.gateway_url)}/internal/workers/deregister",
                json={"worker_id": self.worker_id},
                headers=self._headers(),
                timeout=2.0,
            )

    async def aclose(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()


class RegistrationRefused(Exception):
    pass


def registrations_for(
    gateway_urls: Sequence[str], *, worker_id: str, **common: Any
) -> list[GatewayRegistration]:
    """One registration per gateway, all under the same worker id (the replicas of one
    arena share the worker table, so each beat refreshes the same row)."""
    return [
        GatewayRegistration(gateway_url=url, worker_id=worker_id, **common) for url in gateway_urls
    ]


async def run_registrations(registrations: Sequence[GatewayRegistration]) -> None:
    """Beat with every gateway at once (cancel to stop); each retries on its own."""
    await asyncio.gather(*(reg.run() for reg in registrations))


async def leave_gateways(registrations: Sequence[GatewayRegistration]) -> None:
    """Deregister from every gateway (those down are skipped) and close the clients."""
    await asyncio.gather(*(reg.deregister() for reg in registrations))
    for reg in registrations:
        await reg.aclose()


def _raise_for(response: httpx.Response, doing: str) -> None:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise RegistrationRefused(f"{doing} failed with HTTP {response.status_code}: {message}")


def _reachable_host(host: str) -> str:
    """A wildcard bind address is not something a gateway can call; use this host's name."""
    if host in ("0.0.0.0", "::", ""):
        import socket

        name = socket.getfqdn()
        log.warning("advertising %s for a wildcard bind; pass --advertise-url to choose", name)
        return name
    return f"[{host}]" if ":" in host else host


def build_local_provider(
    settings: Settings, *, model: str, name: str, device: str, max_concurrency: int
) -> Provider:
    """The local (transformers) provider for ``model`` (a directory or hub id)."""
    from arena.providers.registry import ModelSpec

    spec = ModelSpec(
        name=name,
        provider="local",
        model_path=model,
        device=device,
        max_concurrency=max_concurrency,
        capabilities=["text", "completions", "embeddings"],
    )
    from arena.providers import registry as provider_registry

    build_one = getattr(provider_registry, "build_provider", None)
    if build_one is not None:
        return build_one(spec, settings)
    from arena.providers.local import LocalProvider  # type: ignore[import-not-found]

    return LocalProvider(spec, settings)


async def _serve_until_stopped(server: Any, started: Callable[[int], Awaitable[None]]) -> None:
    """Run a uvicorn server; once listening, call ``started(port)``."""
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the worker's HTTP server stopped during start-up")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    await started(port)
    await task


def run_model_worker(
    settings: Settings,
    *,
    provider: Provider,
    model_name: str,
    gateway_urls: Sequence[str],
    host: str,
    port: int,
    advertise_url: str | None,
    worker_id: str | None,
    weight: float,
) -> None:
    """Serve ``provider`` on host:port (0 = any free port) and register with the gateways."""
    import uvicorn

    app = create_worker_app(settings, provider, model_name=model_name)
    gateway = app.state.gateway
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="info",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    registration: list[GatewayRegistration] = []

    async def started(bound_port: int) -> None:
        url = advertise_url or f"http://{_reachable_host(host)}:{bound_port}/v1"
        log.info("worker serving %s at %s", model_name, url)
        print(f"ARENA_WORKER_LISTENING {url}", flush=True)
        if gateway_urls:
            registration.extend(
                registrations_for(
                    gateway_urls,
                    worker_id=worker_id or f"worker-{uuid.uuid4().hex[:12]}",
                    model_names=[model_name],
                    url=url,
                    kind=WORKER_KIND,
                    weight=weight,
                    secret=settings.worker_secret,
                    interval_s=settings.heartbeat_interval_s,
                    queue_length=lambda: gateway.in_flight,
                    healthy=provider.health,
                )
            )
            gateway.background.append(asyncio.create_task(run_registrations(registration)))

    async def leave() -> None:
        # Runs inside the app's shutdown (uvicorn re-raises SIGTERM once serving ends, so
        # anything after serve() returns may never run).
        await leave_gateways(registration)

    gateway.on_shutdown.append(leave)

    async def main() -> None:
        load = getattr(provider, "load", None)
        if load is not None:
            # Load before registering, so the gateway never waits on a cold model.
            log.info("loading %s", model_name)
            await load()
        await _serve_until_stopped(server, started)

    asyncio.run(main())


def run_upstream_worker(
    settings: Settings,
    *,
    upstream_url: str,
    model_name: str,
    upstream_model: str,
    gateway_urls: Sequence[str],
    worker_id: str | None,
    weight: float,
    api_key_env: str | None,
) -> None:
    """Register an OpenAI-compatible endpoint; heartbeat with its ``/models`` health.

    ``api_key_env`` is read here, by this process, for the health probe only; it is not
    sent to the gateway, which uses the key its operator configured for the model."""
    from arena.providers.openai_compat import OpenAICompatProvider
    from arena.providers.upstream_http import Timeouts

    probe = OpenAICompatProvider(
        base_url=upstream_url,
        upstream_model=upstream_model,
        api_key_env=api_key_env,
        timeouts=Timeouts.from_settings(settings),
    )
    meta: dict[str, Any] = {"upstream_models": {model_name: upstream_model}}
    registrations = registrations_for(
        gateway_urls,
        worker_id=worker_id or f"upstream-{uuid.uuid4().hex[:12]}",
        model_names=[model_name],
        url=upstream_url.rstrip("/"),
        kind=UPSTREAM_KIND,
        weight=weight,
        secret=settings.worker_secret,
        interval_s=settings.heartbeat_interval_s,
        meta=meta,
        healthy=probe.health,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        beat = asyncio.create_task(run_registrations(registrations))
        print(f"ARENA_WORKER_REGISTERING {registrations[0].url}", flush=True)
        try:
            await stop.wait()
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            await leave_gateways(registrations)
            await probe.aclose()

    asyncio.run(main())
