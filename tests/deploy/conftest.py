"""Fixtures of the deploy tests: a fresh PostgreSQL database per module, Redis, and the
slow-streaming OpenAI-compatible stand-in every replica's models call.

The stand-in runs in the test process, so a test changes how fast and how long it answers
(``standin.token_interval_s``, ``standin.reply``) while the replicas run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.cluster import registry_yaml
from support.openai_standin import create_app
from support.servers import StandinConfig, serve_app

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
FAST_REPLY = "A plain answer about rivers, bridges and evening light."


def _unreachable(what: str, error: Exception) -> None:
    if os.environ.get("CI"):
        raise error
    pytest.skip(f"{what} not reachable: {error}")


@pytest.fixture(scope="module")
def deploy_database_url() -> Iterator[str]:
    """A PostgreSQL database of this module's alone (SQLAlchemy URL, psycopg driver)."""
    import psycopg

    admin = os.environ.get("ARENA_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as e:
        _unreachable("PostgreSQL", e)
    name = f"arena_deploy_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rpartition('/')[0]}/{name}".replace(
            "postgresql://", "postgresql+psycopg://", 1
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    url = os.environ.get("ARENA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as e:
        _unreachable("Redis", e)
    return url


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinConfig]:
    config = StandinConfig(reply=FAST_REPLY)
    with serve_app(create_app(config)) as url:
        config.url = url  # type: ignore[attr-defined]
        yield config


@pytest.fixture(autouse=True)
def fast_standin(request) -> Iterator[None]:
    """Every test starts with the stand-in answering at once."""
    if "standin" not in request.fixturenames:
        yield
        return
    config = request.getfixturevalue("standin")
    config.reply, config.token_count, config.token_interval_s = FAST_REPLY, None, 0.0
    yield
    config.token_interval_s = 0.0


@pytest.fixture(scope="module")
def registry_file(tmp_path_factory, standin) -> Path:
    path = tmp_path_factory.mktemp("registry") / "arena.yaml"
    path.write_text(registry_yaml(standin.url))  # type: ignore[attr-defined]
    return path
