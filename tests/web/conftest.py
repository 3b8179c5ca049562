"""Fixtures of the web tests: a real arena web app served by uvicorn on a loopback port,
with scripted stand-in providers and a fresh SQLite database per test."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from arena.config import Settings
from arena.store.db import Database
from arena.web.app import create_web_app
from support.processes import PROCESS_DEADLINE_S
from support.web_fakes import ArenaClient, ScriptedProvider, spec_for


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """uvicorn on 127.0.0.1, port 0, in a thread. ``proxy_headers=False`` as in production:
    the app alone decides whom to believe about client addresses (settings.trusted_proxies);
    uvicorn's default would rewrite the peer from X-Forwarded-For sent by any local client."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        ws="none",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + PROCESS_DEADLINE_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the web test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=PROCESS_DEADLINE_S)


@dataclass
class RunningArena:
    url: str
    app: Any
    settings: Settings
    db: Database
    providers: dict[str, ScriptedProvider]

    def client(self, **kwargs: Any) -> ArenaClient:
        c = ArenaClient(self.url, **kwargs)
        c.start()
        return c


@pytest.fixture
def arena_server(tmp_path) -> Iterator[Any]:
    """``arena_server(providers, specs=None, **include_web options) -> RunningArena``."""
    stack = contextlib.ExitStack()
    count = 0

    def start(
        providers: list[ScriptedProvider],
        *,
        specs: list[Any] | None = None,
        database_url: str | None = None,
        settings: dict[str, Any] | None = None,
        **options: Any,
    ) -> RunningArena:
        nonlocal count
        count += 1
        data_dir = tmp_path / f"arena{count}"
        cfg = Settings(
            data_dir=data_dir,
            database_url=database_url or f"sqlite:///{data_dir / 'arena.db'}",
            secret_key="web-test-secret",
            **(settings or {}),
        )
        if specs is None:
            specs = [spec_for(p.name, vision=p.vision) for p in providers]
        app = create_web_app(
            cfg, registry=specs, providers={p.name: p for p in providers}, **options
        )
        url = stack.enter_context(serve(app))
        db = Database(cfg.resolved_database_url())
        stack.callback(db.dispose)
        return RunningArena(url, app, cfg, db, {p.name: p for p in providers})

    yield start
    stack.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (pages get a fresh context each)."""
    from playwright.sync_api import sync_playwright

    from support.browser import launch_chromium

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def redteam_game(arena_server, tmp_path):
    """``redteam_game(providers=None, *, settings=None, **options) -> RunningArena``: the
    arena with the shared red-team challenges (support.redteam_game), two compliant models
    unless ``providers`` are given."""
    from support.redteam_game import CHALLENGES, echo

    path = tmp_path / "redteam-challenges.yaml"
    path.write_text(CHALLENGES)

    def start(providers=None, *, settings=None, **options):
        providers = providers or [
            ScriptedProvider("m-one", reply=echo),
            ScriptedProvider("m-two", reply=echo),
        ]
        merged = {"redteam_challenges_path": path, **(settings or {})}
        return arena_server(providers, settings=merged, **options)

    return start


@pytest.fixture
def redteam_game_unlimited(redteam_game):
    """``redteam_game`` with the rate limits out of the way (``settings`` may set them)."""
    unlimited = {
        "requests_per_session": "1000/minute",
        "requests_per_ip": "1000/minute",
        "leaderboard_refresh_s": 0.0,
    }

    def start(providers=None, *, settings=None, **options):
        return redteam_game(providers, settings={**unlimited, **(settings or {})}, **options)

    return start
