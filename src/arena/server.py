"""The composition root of ``arena serve``: one FastAPI app with the gateway and the web app.

``create_server_app(settings)`` opens the database (migrating it to head, and refusing a
secret key other than the one the database's replicas share), builds the
providers of the model registry file, the worker pool, API-key access and rate limits, and
mounts the ``/v1`` gateway and the worker registration routes. The web app's routers are
included at the marked hook below.

Registered workers are reached through their own connection pool, whose sockets refuse
link-local and metadata addresses (``arena.gateway.worker_addresses``), and with keys the
operator configured (``worker_upstream_key_envs``), never ones a worker names.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from arena.config import Settings
from arena.providers.base import Provider
from arena.providers.registry import ModelSpec, RegistryFile

log = logging.getLogger("arena.server")

WORKER_KIND = "arena_worker"


def load_configured_registry(settings: Settings) -> RegistryFile:
    """The registry file when one is configured, else the embedded default (demo models,
    plus any Ollama server answering on its default port)."""
    from arena.providers.registry import registry_for

    return registry_for(settings)


def build_static_providers(
    registry: RegistryFile, settings: Settings, client: Any = None
) -> dict[str, Provider]:
    """Providers for every registry model not served by registered workers.

    OpenAI-compatible models share the gateway's ``client`` (one pool for all upstreams);
    every other kind is built by ``arena.providers.registry.build_provider``; routers reuse
    their targets' providers (a local target is loaded once)."""
    from arena.providers.registry import build_providers

    return build_providers(registry, settings, client)


def model_card(spec: ModelSpec) -> dict[str, Any]:
    card: dict[str, Any] = {"owned_by": spec.organization or "arena"}
    if spec.description:
        card["description"] = spec.description
    if spec.license:
        card["license"] = spec.license
    card["capabilities"] = list(spec.capabilities)
    return card


def configured_model_names(
    registry: RegistryFile, providers: dict[str, Provider]
) -> dict[str, str]:
    """Names (and aliases) the gateway's own configuration serves, with their provider
    kind: no worker may claim them."""
    names = {name: "configured" for name in providers}
    for spec in registry.models:
        if spec.provider != "workers":
            for name in (spec.name, *spec.aliases):
                names[name] = spec.provider
    return names


def worker_upstream_key_envs(registry: RegistryFile, settings: Settings) -> dict[str, str]:
    """Per model, the environment variable holding the key sent to its registered
    OpenAI-compatible upstreams: the ``api_key_env`` of the model's ``provider: workers``
    registry entry, else ``settings.worker_upstream_keys``. The operator decides both."""
    envs = dict(settings.worker_upstream_keys)
    for spec in registry.models:
        if spec.provider == "workers" and spec.api_key_env:
            envs[spec.name] = spec.api_key_env
    return envs


def worker_provider_factory(
    settings: Settings, client: Any = None, key_envs: dict[str, str] | None = None
):
    """How the gateway talks to a registered worker: the OpenAI-compatible adapter.

    ``arena worker`` processes get the worker secret; registered upstreams get the key of
    ``key_envs[model]``. Nothing in the worker's registration names a credential."""
    from arena.providers.openai_compat import OpenAICompatProvider
    from arena.providers.upstream_http import Timeouts

    timeouts = Timeouts.from_settings(settings)
    key_envs = dict(key_envs or {})

    def build(info: Any, model: str) -> Provider:
        upstream_models = (info.meta or {}).get("upstream_models") or {}
        is_arena_worker = info.kind == WORKER_KIND
        return OpenAICompatProvider(
            base_url=info.url,
            upstream_model=upstream_models.get(model, model),
            kind=info.kind,
            api_key=settings.worker_secret if is_arena_worker else None,
            api_key_env=None if is_arena_worker else key_envs.get(model),
            timeouts=timeouts,
            client=client,
        )

    return build


def check_replica_secret(db: Any, settings: Settings) -> None:
    """Raise ``arena.store.replica_settings.ReplicaMismatch`` when the database was set up
    by replicas with another secret key: every way of building this server checks it, not
    only ``arena serve``, since sessions and hashed addresses must mean the same everywhere."""
    from arena.store.replica_settings import check_secret_fingerprint
    from arena.web.app import resolve_secret

    check_secret_fingerprint(
        db, resolve_secret(settings), from_environment=bool(settings.secret_key)
    )


def create_server_app(
    settings: Settings,
    registry: RegistryFile | None = None,
    *,
    providers: dict[str, Provider] | None = None,
) -> FastAPI:
    """The app ``arena serve`` runs. ``providers`` replaces the registry-built ones (tests)."""
    from arena.gateway.app import create_gateway_app
    from arena.gateway.auth import KeyAuthenticator
    from arena.gateway.rate_limit import KeyRateLimiter
    from arena.gateway.registration import add_worker_routes
    from arena.gateway.routing import ModelRouter
    from arena.gateway.worker_addresses import guarded_socket
    from arena.gateway.worker_pool import WorkerPool
    from arena.providers.upstream_http import UpstreamClient
    from arena.store.db import Database
    from arena.store.migrate import upgrade

    if registry is None:
        registry = load_configured_registry(settings)
    db = Database.from_settings(settings)
    upgrade(db.url)
    try:
        check_replica_secret(db, settings)
    except BaseException:
        db.dispose()
        raise
    # One pool for every OpenAI-compatible upstream and worker; closed once, at shutdown.
    client = UpstreamClient(
        connect_timeout_s=settings.connect_timeout_s, max_connections=4096, shared=True
    )
    if providers is None:
        providers = build_static_providers(registry, settings, client)
    # Workers get a pool of their own: its sockets refuse link-local and metadata addresses
    # at connect time, whatever a worker's host name resolves to by then.
    worker_client = UpstreamClient(
        connect_timeout_s=settings.connect_timeout_s,
        max_connections=4096,
        shared=True,
        socket_factory=None if settings.worker_allow_link_local else guarded_socket,
    )

    pool = WorkerPool(
        db,
        provider_factory=worker_provider_factory(
            settings, worker_client, worker_upstream_key_envs(registry, settings)
        ),
        policy=settings.dispatch_policy,
        expiry_s=settings.heartbeat_expiry_s,
        refresh_s=min(1.0, settings.heartbeat_interval_s),
        failure_cooldown_s=min(5.0, settings.heartbeat_expiry_s),
    )
    router = ModelRouter(
        providers,
        cards={spec.name: model_card(spec) for spec in registry.models},
        worker_models={s.name for s in registry.models if s.provider == "workers"},
        pool=pool,
    )
    access = KeyAuthenticator(db, ttl_s=settings.key_cache_ttl_s)
    limiter = KeyRateLimiter(settings.redis_url)
    app = create_gateway_app(settings, router=router, access=access, limiter=limiter, title="Arena")
    add_worker_routes(
        app,
        db=db,
        pool=pool,
        secret=settings.worker_secret,
        configured_models=configured_model_names(registry, providers),
        worker_models={spec.name for spec in registry.models if spec.provider == "workers"},
        allow_link_local=settings.worker_allow_link_local,
    )

    async def dispose() -> None:
        await client.close()
        await worker_client.close()
        db.dispose()

    app.state.gateway.on_shutdown.append(dispose)
    app.state.db = db
    app.state.registry = registry
    app.state.settings = settings

    # The arena pages, the arena JSON API and the leaderboard share the gateway's providers;
    # models that registered workers serve are reached through the router, as /v1 does.
    from arena.gateway.routing import RoutedProvider
    from arena.web.app import include_web

    arena_providers = dict(providers)
    for spec in registry.models:
        if spec.provider == "workers":
            arena_providers[spec.name] = RoutedProvider(
                router,
                spec.name,
                app.state.gateway.timeouts,
                capabilities=frozenset(spec.capabilities),
            )
    web = include_web(
        app,
        settings=settings,
        registry=registry,
        providers=arena_providers,
        db=db,
        rate_limit_storage=settings.redis_url,
    )

    app.state.gateway.on_startup.append(web.start)
    app.state.gateway.on_shutdown.insert(0, web.stop)
    return app
