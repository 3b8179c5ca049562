"""Fixtures of the gateway tests: a stand-in upstream and real gateways on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from arena.config import Settings
from arena.providers.openai_compat import OpenAICompatProvider
from arena.providers.upstream_http import Timeouts
from support.openai_standin import create_app as create_standin
from support.servers import StandinConfig, serve_app

# Upstream names the stand-in turns into faults (see support.servers.StandinConfig).
FAULT_MODELS = ("500", "slow_first_token", "hang", "malformed", "drop", "error_event", "400")


@pytest.fixture
def standin() -> Iterator[tuple[StandinConfig, str]]:
    """A stand-in OpenAI upstream: (its config, its API root ``.../v1``)."""
    config = StandinConfig(reply="Hello from the stand-in upstream")
    with serve_app(create_standin(config)) as url:
        yield config, url + "/v1"


def fast_settings(tmp_path: Any, **overrides: Any) -> Settings:
    """Settings with limits short enough that a fault test ends in seconds, yet long enough
    that a healthy stand-in on a busy machine never trips them: a stand-in's faults last
    a minute (``StandinConfig``), so a test sees the limit, not the fault, end a request.
    Workers a test registers by hand send no heartbeats: they live for the whole test
    (a test of expiry sets its own)."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": f"sqlite:///{tmp_path / 'arena.db'}",
        "request_timeout_s": 30.0,
        "connect_timeout_s": 5.0,
        "first_token_timeout_s": 5.0,
        "stream_idle_timeout_s": 5.0,
        "heartbeat_interval_s": 0.2,
        "heartbeat_expiry_s": 600.0,
        "key_cache_ttl_s": 0.2,
        "max_request_bytes": 64 * 1024,
        # Tests on the session's shared PostgreSQL database are replicas of one deployment:
        # they share a key, as replicas must (a server refuses another one).
        "secret_key": "gateway-test-secret",
    }
    values.update(overrides)
    return Settings(**values)


def standin_providers(api_root: str, settings: Settings) -> dict[str, Any]:
    """``standin`` plus ``fault-<mode>`` models, all pointing at the stand-in."""
    timeouts = Timeouts.from_settings(settings)
    providers: dict[str, Any] = {
        "standin": OpenAICompatProvider(
            base_url=api_root, upstream_model="standin-model", timeouts=timeouts
        )
    }
    for mode in FAULT_MODELS:
        providers[f"fault-{mode}"] = OpenAICompatProvider(
            base_url=api_root, upstream_model=f"fault-{mode}", timeouts=timeouts
        )
    return providers


GatewayFactory = Callable[..., contextlib.AbstractContextManager[tuple[str, Any]]]


@pytest.fixture
def gateway_factory(tmp_path: Any) -> GatewayFactory:
    """Start ``create_server_app`` under uvicorn: yields (base URL, app)."""
    from arena.server import create_server_app

    @contextlib.contextmanager
    def start(
        settings: Settings | None = None, providers: dict[str, Any] | None = None, **kw: Any
    ) -> Iterator[tuple[str, Any]]:
        settings = settings or fast_settings(tmp_path)
        app = create_server_app(settings, providers=providers or {}, **kw)
        with serve_app(app) as url:
            yield url, app

    return start


@pytest.fixture
def gateway(standin, gateway_factory, tmp_path) -> Iterator[tuple[str, Any, StandinConfig]]:
    config, api_root = standin
    settings = fast_settings(tmp_path)
    with gateway_factory(settings, standin_providers(api_root, settings)) as (url, app):
        yield url, app, config


def client(base_url: str, api_key: str = "unused", **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url + "/v1", api_key=api_key, max_retries=0, timeout=kw.pop("timeout", 60)
    )


@pytest.fixture
def make_client() -> Callable[..., openai.OpenAI]:
    return client


@pytest.fixture
def make_settings(tmp_path: Any) -> Callable[..., Settings]:
    return lambda **overrides: fast_settings(tmp_path, **overrides)


@pytest.fixture
def make_providers() -> Callable[[str, Settings], dict[str, Any]]:
    return standin_providers
