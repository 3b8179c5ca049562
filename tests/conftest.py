"""Fixtures every test area shares: a throwaway PostgreSQL database and settings.

PostgreSQL tests use ``ARENA_TEST_POSTGRES_URL`` (default: the local trust-auth server's
``test`` database). Each test session gets its own freshly created database, so several
runs on one machine never see each other's tables. When no server answers, PostgreSQL
tests are skipped locally but fail under CI (``CI=true``), where a server must exist.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"

# The embedded default registry would offer Hub models found in this machine's cache or on
# the Hub: tests get none of them unless they ask (tests/providers/test_providers_hub.py).
os.environ["ARENA_DEFAULT_HUB_MODELS"] = ""
os.environ["HF_HUB_OFFLINE"] = "1"


def _admin_url() -> str:
    return os.environ.get("ARENA_TEST_POSTGRES_URL", DEFAULT_PG)


@contextlib.contextmanager
def _fresh_postgres_database() -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its SQLAlchemy URL, drop it afterwards."""
    import psycopg

    admin = _admin_url()
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {admin}: {e}")
    name = f"arena_test_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin.rpartition("/")
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL (psycopg driver) to a fresh PostgreSQL database shared by the session."""
    with _fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def own_database_url(request, tmp_path) -> Iterator[str]:
    """Like ``database_url``, but the PostgreSQL database is this test's alone: for tests
    whose rows change how every later test's gateway behaves (API keys close open mode)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'arena.db'}"
        return
    with _fresh_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'arena.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """Run a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'arena.db'}"
    return request.getfixturevalue("postgres_url")
