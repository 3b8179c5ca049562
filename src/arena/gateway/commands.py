"""CLI commands of arena.gateway: ``arena serve``, ``arena worker``, ``arena models``,
``arena keys create|list|revoke`` (registered by arena.cli; heavy imports stay inside)."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from pathlib import Path
from typing import Any

import typer

log = logging.getLogger("arena.serve")

keys_app = typer.Typer(help="Create, list and revoke gateway API keys.", no_args_is_help=True)


def _settings(**overrides: Any) -> Any:
    from arena.config import Settings

    settings = Settings()
    update = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=update) if update else settings


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def _configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # One line per heartbeat or upstream call is noise, not information.
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def _open_database(settings: Any) -> Any:
    from arena.store.db import Database
    from arena.store.migrate import upgrade

    db = Database.from_settings(settings)
    upgrade(db.url)
    return db


# ---------------------------------------------------------------- arena serve


def serve(
    host: str = typer.Option(None, help="Address to bind (default: settings.host, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default: settings.port, 8000)."),
    config: Path = typer.Option(None, "--config", help="Model registry YAML."),
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default: SQLite in data_dir)."),
    insecure_open: bool = typer.Option(
        False,
        "--insecure-open",
        help="Allow binding a non-loopback address while no API key exists (anyone can call).",
    ),
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Run the OpenAI-compatible gateway (and the web app) with uvicorn."""
    import uvicorn

    from arena.providers.registry import RegistryError
    from arena.redteam import ChallengeFileError
    from arena.server import create_server_app, load_configured_registry
    from arena.store.keys import count_active_keys
    from arena.store.replica_settings import ReplicaMismatch

    _configure_logging(log_level.upper())
    settings = _settings(host=host, port=port, config_path=config, database_url=database_url)
    try:
        registry = load_configured_registry(settings)
    except RegistryError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    db = _open_database(settings)
    try:
        active = count_active_keys(db)
    finally:
        db.dispose()
    loopback = is_loopback(settings.host)
    if active == 0:
        if not loopback and not insecure_open:
            typer.echo(
                f"refusing to serve on {settings.host}: no API keys exist, so anyone who can "
                "reach it could use it. Create one with `arena keys create NAME`, bind "
                "127.0.0.1, or pass --insecure-open.",
                err=True,
            )
            raise typer.Exit(2)
        log.warning(
            "no API keys configured: the gateway is OPEN to anyone who can reach %s:%s%s",
            settings.host,
            settings.port,
            "" if loopback else " (--insecure-open)",
        )
    else:
        log.info("%d active API key(s): requests need 'Authorization: Bearer <key>'", active)
    try:
        app = create_server_app(settings, registry)
    except RegistryError as e:  # a model that cannot be built (e.g. an untrained router)
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    except ChallengeFileError as e:  # the red-team game's challenges do not fit the registry
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    except ReplicaMismatch as e:  # another replica set the database up with another secret
        typer.echo(f"refusing to start: {e}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        # Client addresses are decided by settings.trusted_proxies alone; uvicorn's default
        # would believe X-Forwarded-For from any local client.
        proxy_headers=False,
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )


# ---------------------------------------------------------------- arena worker


def worker(
    model: str = typer.Option(None, "--model", help="Local model directory or hub id to serve."),
    upstream: str = typer.Option(
        None, "--upstream", help="Register this OpenAI-compatible endpoint (e.g. .../v1)."
    ),
    upstream_model: str = typer.Option(None, help="Model name at the upstream."),
    upstream_api_key_env: str = typer.Option(
        None,
        help="Env var holding the upstream's API key, read by this process for its health "
        "probe only. The gateway sends the key its operator sets for the model: api_key_env "
        "of a 'provider: workers' registry entry, or ARENA_WORKER_UPSTREAM_KEYS=MODEL=VAR.",
    ),
    gateway: list[str] = typer.Option(
        None,
        "--gateway",
        help="Gateway URL to register with; repeat it (or separate URLs with commas) to "
        "register with every replica, so the model stays listed while any of them lives.",
    ),
    name: str = typer.Option(None, "--name", help="Public model name (default: from --model)."),
    host: str = typer.Option("127.0.0.1", help="Address the worker binds."),
    port: int = typer.Option(0, help="Port (0: any free port)."),
    advertise_url: str = typer.Option(
        None, help="URL the gateway should use for this worker (default http://HOST:PORT/v1)."
    ),
    worker_id: str = typer.Option(None, help="Stable worker id (default: random)."),
    weight: float = typer.Option(1.0, min=0.0, help="Weight for weighted-random dispatch."),
    device: str = typer.Option("auto", help="Torch device for --model."),
    max_concurrency: int = typer.Option(4, min=1, help="Concurrent generations for --model."),
    heartbeat_interval: float = typer.Option(None, help="Seconds between heartbeats."),
    log_level: str = typer.Option("info", help="Log level."),
) -> None:
    """Serve a local model behind /v1 (or register an upstream) and keep it registered."""
    from arena.worker import parse_gateway_urls, run_model_worker, run_upstream_worker

    _configure_logging(log_level.upper())
    if bool(model) == bool(upstream):
        typer.echo("give exactly one of --model or --upstream", err=True)
        raise typer.Exit(2)
    settings = _settings(heartbeat_interval_s=heartbeat_interval)
    gateways = parse_gateway_urls(gateway or [])
    if upstream:
        if not gateways:
            typer.echo("--upstream needs --gateway", err=True)
            raise typer.Exit(2)
        public = name or upstream_model
        if not public:
            typer.echo("--upstream needs --upstream-model or --name", err=True)
            raise typer.Exit(2)
        run_upstream_worker(
            settings,
            upstream_url=upstream,
            model_name=public,
            upstream_model=upstream_model or public,
            gateway_urls=gateways,
            worker_id=worker_id,
            weight=weight,
            api_key_env=upstream_api_key_env,
        )
        return
    from arena.worker import build_local_provider

    public = name or Path(model.rstrip("/")).name
    provider = build_local_provider(
        settings, model=model, name=public, device=device, max_concurrency=max_concurrency
    )
    if not is_loopback(host) and not settings.worker_secret:
        log.warning("worker bound to %s without ARENA_WORKER_SECRET: anyone can call it", host)
    run_model_worker(
        settings,
        provider=provider,
        model_name=public,
        gateway_urls=gateways,
        host=host,
        port=port,
        advertise_url=advertise_url,
        worker_id=worker_id,
        weight=weight,
    )


# ---------------------------------------------------------------- arena models


def models(
    config: Path = typer.Option(None, "--config", help="Model registry YAML."),
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default: SQLite in data_dir)."),
) -> None:
    """List configured models and live workers."""
    from rich.console import Console
    from rich.table import Table

    from arena.providers.registry import RegistryError
    from arena.server import load_configured_registry
    from arena.store.workers import live_workers

    settings = _settings(config_path=config, database_url=database_url)
    console = Console()
    try:
        registry = load_configured_registry(settings)
    except RegistryError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None
    db = _open_database(settings)
    try:
        workers = live_workers(db, expiry_s=settings.heartbeat_expiry_s)
    finally:
        db.dispose()

    table = Table(title="Configured models")
    for column in ("name", "provider", "upstream", "capabilities", "arena", "live workers"):
        table.add_column(column)
    per_model: dict[str, int] = {}
    for w in workers:
        for m in w.model_names:
            per_model[m] = per_model.get(m, 0) + 1
    for spec in registry.models:
        target = spec.model_path or spec.resolved_base_url or ""
        table.add_row(
            spec.name,
            spec.provider,
            f"{spec.upstream_name} @ {target}" if target else spec.upstream_name,
            ", ".join(spec.capabilities),
            "yes" if spec.arena.enabled else "no",
            str(per_model.get(spec.name, 0)),
        )
    if not registry.models:
        table.caption = "no registry file (set ARENA_CONFIG_PATH or create ./arena.yaml)"
    console.print(table)

    wtable = Table(title=f"Live workers (heartbeat within {settings.heartbeat_expiry_s:g}s)")
    for column in ("worker", "models", "url", "kind", "weight", "queue", "healthy", "last beat"):
        wtable.add_column(column)
    for w in workers:
        wtable.add_row(
            w.worker_id,
            ", ".join(w.model_names),
            w.url,
            w.kind,
            f"{w.weight:g}",
            str(w.queue_length),
            "yes" if w.healthy else "no",
            w.last_heartbeat_at.strftime("%H:%M:%S"),
        )
    if not workers:
        wtable.caption = "no live workers"
    console.print(wtable)


# ---------------------------------------------------------------- arena keys


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="A label for the key (who or what uses it)."),
    rpm: int = typer.Option(None, "--rpm", min=1, help="Requests per minute limit."),
    tpm: int = typer.Option(None, "--tpm", min=1, help="Tokens per minute limit."),
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default: SQLite in data_dir)."),
) -> None:
    """Create a key; its secret is printed once and never stored."""
    from arena.errors import ArenaError
    from arena.store.keys import create_api_key

    db = _open_database(_settings(database_url=database_url))
    try:
        plaintext, info = create_api_key(db, name, rpm_limit=rpm, tpm_limit=tpm)
    except ArenaError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    typer.echo(f"created key {info.id} ({info.name}), prefix {info.prefix}")
    typer.echo("store this secret now; it is not shown again:")
    typer.echo(plaintext)


@keys_app.command("list")
def keys_list(
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default: SQLite in data_dir)."),
) -> None:
    """List keys (prefix, limits, state); secrets are never shown."""
    from rich.console import Console
    from rich.table import Table

    from arena.store.keys import list_api_keys

    db = _open_database(_settings(database_url=database_url))
    try:
        keys = list_api_keys(db)
    finally:
        db.dispose()
    table = Table(title="API keys")
    for column in ("id", "name", "prefix", "rpm", "tpm", "created", "state"):
        table.add_column(column)
    for k in keys:
        table.add_row(
            str(k.id),
            k.name,
            k.prefix,
            str(k.rpm_limit or "-"),
            str(k.tpm_limit or "-"),
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            "active" if k.revoked_at is None else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}",
        )
    Console(width=int(os.environ.get("COLUMNS", "120"))).print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., help="Key id, displayed prefix, or the full key."),
    database_url: str = typer.Option(None, help="SQLAlchemy URL (default: SQLite in data_dir)."),
) -> None:
    """Revoke a key (gateways stop accepting it within settings.key_cache_ttl_s)."""
    from arena.errors import ArenaError
    from arena.store.keys import revoke_api_key

    settings = _settings(database_url=database_url)
    db = _open_database(settings)
    try:
        revoked = revoke_api_key(db, key)
    except ArenaError as e:
        typer.echo(f"error: {e.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()
    if not revoked:
        typer.echo(f"no active key matches {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"revoked {key}; running gateways stop accepting it within {settings.key_cache_ttl_s:g}s"
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.command("models")(models)
    app.add_typer(keys_app, name="keys")
