"""The web app: arena pages and their JSON API, plus the leaderboard page, on a FastAPI app.

``include_web(app, settings=..., registry=..., providers=..., db=...)`` adds everything to
an existing app (``arena serve`` includes it next to the ``/v1`` gateway);
``create_web_app(...)`` builds a standalone app (tests, or a web-only process).

When the registry has no models, the built-in demo models (``default_registry``) are used
and the log and the About page say how to add real ones.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.requests import Request

from arena import __version__
from arena.battles.limits import (
    ArenaLimits,
    ArenaRateLimiter,
    client_ip,
    hash_ip,
    parse_trusted_proxies,
)
from arena.battles.moderation import Moderator
from arena.battles.pair_sampler import SamplerConfig
from arena.config import Settings
from arena.providers.base import Provider
from arena.providers.registry import ModelSpec, RegistryFile
from arena.store.db import Database
from arena.web.i18n import make_templates
from arena.web.images import ImageLimits
from arena.web.live_leaderboard import live_leaderboard
from arena.web.live_snapshot import LiveLeaderboardSnapshot
from arena.web.model_health import ModelHealth
from arena.web.routing import make_route_class
from arena.web.service import ArenaService
from arena.web.sessions import SessionManager, WebSession
from arena.web.streaming import StreamLimits

log = logging.getLogger("arena.web")

PACKAGE_DIR = Path(__file__).resolve().parent
NO_REAL_MODELS = (
    "No real model is configured, so the arena runs with built-in demo models (labelled "
    "'demo'; they write word salad). To add real models, write an arena.yaml model registry "
    "(see the About page) or set ARENA_CONFIG_PATH, then restart `arena serve`."
)
JSON_BODY_SLACK = 16 * 1024
UPLOAD_BODY_SLACK = 64 * 1024


def resolve_secret(settings: Settings) -> bytes:
    """The server secret (signs sessions, salts IP hashes): ``settings.secret_key`` or a
    random one kept in ``data_dir/secret_key`` (created once, readable by the owner only)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.data_dir / "secret_key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole to a private temporary file, then linked into place: a process racing
    # us either wins the link or reads a complete secret, never an empty file.
    tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes().strip()


@dataclass
class WebContext:
    """Everything the web routes share; one per included web app."""

    settings: Settings
    service: ArenaService
    sessions: SessionManager
    limits: ArenaLimits
    templates: Jinja2Templates
    route_class: type[APIRoute]
    secret: bytes
    trusted_proxies: tuple[Any, ...]
    root_path: str = ""
    built_providers: dict[str, Provider] = field(default_factory=dict)
    leaderboard_href: str = "/leaderboard"
    refresher: Any = None  # leaderboard.refresher.ArtifactRefresher when the board is live
    redteam: Any = None  # web.redteam_game.RedTeamGame
    leaderboard_sync: Any = None  # leaderboard.shared.LeaderboardSync when the board is live
    static_dir: Path = PACKAGE_DIR / "static"

    async def start(self) -> None:
        """Background work of the arena (health probes, leaderboard sync); call in the app's
        lifespan."""
        if self.service.health is not None:
            self.service.health.start()
        if self.leaderboard_sync is not None:
            # Its first check installs the published board and catches up older votes.
            self.leaderboard_sync.start()

    async def stop(self) -> None:
        if self.service.health is not None:
            await self.service.health.stop()
        if self.leaderboard_sync is not None:
            self.leaderboard_sync.close()  # first: it would wake the refresher again
        if self.refresher is not None:
            self.refresher.close()
        if self.leaderboard_sync is not None:
            self.leaderboard_sync.release_lease()
        for provider in self.built_providers.values():
            await provider.aclose()

    def static_url(self, name: str) -> str:
        return f"{self.root_path}/static/{name}?v={__version__}"

    def ip_hash(self, request: Request) -> str | None:
        peer = request.client.host if request.client else None
        ip = client_ip(peer, request.headers.getlist("x-forwarded-for"), self.trusted_proxies)
        return hash_ip(ip, self.secret) if ip else None

    async def ensure_session(self, request: Request) -> WebSession:
        """The visitor's session, refreshed; a new one (stored) when there is none."""
        session = self.sessions.read(request)
        if session is not None:
            return self.sessions.touch(session)
        session_id = await self.service.create_session(
            ip_hash=self.ip_hash(request), user_agent=request.headers.get("user-agent")
        )
        return self.sessions.session_for(session_id, float(int(time.time())))


def limits_from_settings(settings: Settings) -> ArenaLimits:
    return ArenaLimits(
        max_input_chars=settings.max_input_chars,
        max_turns=settings.max_turns,
        session_ttl_s=settings.session_ttl_s,
        requests_per_session=settings.requests_per_session,
        requests_per_ip=settings.requests_per_ip,
        votes_per_session=settings.votes_per_session,
        votes_per_ip=settings.votes_per_ip,
        uploads_per_session=settings.uploads_per_session,
        uploads_per_ip=settings.uploads_per_ip,
    )


def image_limits_from_settings(settings: Settings) -> ImageLimits:
    return ImageLimits(
        max_pixels=settings.image_max_pixels,
        max_concurrent_decodes=settings.image_decode_concurrency,
    )


def _specs(registry: RegistryFile | Sequence[ModelSpec] | None) -> list[ModelSpec]:
    if registry is None:
        return []
    if isinstance(registry, RegistryFile):
        return list(registry.models)
    return list(registry)


def build_context(
    *,
    settings: Settings,
    registry: RegistryFile | Sequence[ModelSpec] | None,
    providers: dict[str, Provider] | None,
    db: Database,
    limits: ArenaLimits | None = None,
    moderator: Moderator | None = None,
    image_limits: ImageLimits | None = None,
    stream_limits: StreamLimits | None = None,
    rate_limit_storage: str | None = None,
    root_path: str = "",
) -> WebContext:
    """Everything the routes need (``ctx.built_providers``: what this call built itself)."""
    from arena.providers.registry import build_provider, default_registry

    # Worker-served models take part when the caller routes them (arena serve does).
    specs = [s for s in _specs(registry) if s.provider != "workers" or s.name in (providers or {})]
    build_all = providers is None
    if not specs:
        # Nothing configured: the built-in default (demo models, a local Ollama if one
        # answers), whose providers nobody else has built.
        specs = list(default_registry(settings).models)
        build_all = True
    providers = dict(providers or {})
    built: dict[str, Provider] = {}
    for spec in specs:
        # Demo models cost nothing to build; anything else must come from the caller
        # (the gateway's providers) unless the caller gave none at all.
        if spec.name not in providers and (spec.provider == "demo" or build_all):
            providers[spec.name] = built[spec.name] = build_provider(spec, settings)
    missing = [s.name for s in specs if s.name not in providers]
    if missing:
        log.warning("arena: no provider for %s; they are left out of the arena", missing)
    limits = limits or limits_from_settings(settings)
    if moderator is None and settings.blocked_words_path is not None:
        from arena.battles.moderation import WordListModerator, parse_word_list

        words = parse_word_list(settings.blocked_words_path.read_text(encoding="utf-8"))
        moderator = WordListModerator(words)
    secret = resolve_secret(settings)
    sessions = SessionManager(secret, limits, secure_cookies=settings.secure_cookies)
    image_limits = image_limits or image_limits_from_settings(settings)
    body_limit_images = image_limits.max_bytes + UPLOAD_BODY_SLACK
    json_limit = limits.max_input_chars * 4 + JSON_BODY_SLACK

    def body_cap(route: APIRoute) -> int:
        from arena.web.api import UPLOAD_ENDPOINTS

        return body_limit_images if route.name in UPLOAD_ENDPOINTS else json_limit

    service = ArenaService(
        db=db,
        specs=specs,
        providers=providers,
        limits=limits,
        rate_limiter=ArenaRateLimiter(
            limits, storage_uri=rate_limit_storage or settings.redis_url or "memory://"
        ),
        moderator=moderator,
        data_dir=settings.data_dir,
        image_limits=image_limits,
        db_concurrency=settings.db_concurrency,
        sampler_config=SamplerConfig(
            mode=settings.pair_sampling,  # type: ignore[arg-type]
            active_exploration=settings.active_exploration,
        ),
        snapshot=LiveLeaderboardSnapshot(settings.data_dir / "leaderboard"),
        stream_limits=stream_limits
        or StreamLimits(
            first_token_timeout_s=settings.first_token_timeout_s,
            idle_timeout_s=settings.stream_idle_timeout_s,
            total_timeout_s=settings.request_timeout_s,
        ),
    )
    service.health = ModelHealth(
        service.providers,
        interval_s=settings.health_interval_s,
        timeout_s=settings.health_timeout_s,
    )
    if service.only_demo:
        log.warning(NO_REAL_MODELS)
    ctx = WebContext(
        settings=settings,
        service=service,
        sessions=sessions,
        limits=limits,
        templates=make_templates(PACKAGE_DIR / "templates"),
        route_class=make_route_class(sessions, body_cap=body_cap),
        secret=secret,
        trusted_proxies=parse_trusted_proxies(settings.trusted_proxies),
        root_path=root_path,
        built_providers=built,
    )
    return ctx


def _include_leaderboard(app: FastAPI, ctx: WebContext) -> None:
    from arena.web.leaderboard_page import leaderboard_router
    from arena.web.pages import site_nav

    specs = ctx.service.specs
    nav = site_nav(ctx.root_path, ctx.leaderboard_href)
    ctx.refresher, ctx.leaderboard_sync = live_leaderboard(ctx)
    app.include_router(
        leaderboard_router(
            ctx.settings.data_dir / "leaderboard",
            ctx.templates,
            model_info={s.name: (s.organization, s.license) for s in specs},
            page_context=lambda request: {"nav": nav},
            judge_results=ctx.settings.resolved_judge_results_dir(),
        )
    )


def _include_share_and_history(app: FastAPI, ctx: WebContext) -> None:
    """Share links of voted battles (also in every vote's reply) and the session's history."""
    from arena.web.history import history_router
    from arena.web.share import ShareLinks, share_router

    links = ShareLinks(ctx.secret, ctx.root_path)
    ctx.service.votes.share_url_for = links.url_for
    app.include_router(share_router(ctx, links))
    app.include_router(history_router(ctx, links))


def include_web(
    app: FastAPI,
    *,
    settings: Settings,
    registry: RegistryFile | Sequence[ModelSpec] | None = None,
    providers: dict[str, Provider] | None = None,
    db: Database,
    limits: ArenaLimits | None = None,
    moderator: Moderator | None = None,
    image_limits: ImageLimits | None = None,
    stream_limits: StreamLimits | None = None,
    rate_limit_storage: str | None = None,
    leaderboard: bool = True,
) -> WebContext:
    """Add the arena pages, the arena JSON API and the leaderboard page to ``app``.

    ``providers`` should be the gateway's own (shared HTTP clients). Providers this call
    has to build itself (none given, or the built-in default registry) are listed in
    ``ctx.built_providers``; whoever owns the app's lifespan closes them.
    """
    from arena.web.api import api_router
    from arena.web.pages import pages_router
    from arena.web.release_opt_out import release_opt_out_router

    ctx = build_context(
        settings=settings,
        registry=registry,
        providers=providers,
        db=db,
        limits=limits,
        moderator=moderator,
        image_limits=image_limits,
        stream_limits=stream_limits,
        rate_limit_storage=rate_limit_storage,
    )
    app.include_router(api_router(ctx))
    app.include_router(release_opt_out_router(ctx))
    app.include_router(pages_router(ctx))
    _include_share_and_history(app, ctx)
    from arena.web.redteam_setup import include_redteam

    ctx.redteam = include_redteam(app, ctx)
    if leaderboard:
        _include_leaderboard(app, ctx)
    app.state.web = ctx
    return ctx


def create_web_app(
    settings: Settings,
    *,
    registry: RegistryFile | Sequence[ModelSpec] | None = None,
    providers: dict[str, Provider] | None = None,
    db: Database | None = None,
    migrate: bool = True,
    **options: Any,
) -> FastAPI:
    """A standalone web app (no gateway). Opens (and migrates) the database if none given."""
    own_db = db is None
    if db is None:
        from arena.store.migrate import upgrade

        db = Database.from_settings(settings)
        if migrate:
            upgrade(db.url)
    database = db

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.web.start()
        try:
            yield
        finally:
            await app.state.web.stop()
            if own_db:
                database.dispose()

    app = FastAPI(title="Arena web", version=__version__, lifespan=lifespan)
    include_web(app, settings=settings, registry=registry, providers=providers, db=db, **options)
    return app
