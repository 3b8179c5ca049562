"""Fixtures for the store tests: a migrated, emptied database on SQLite and PostgreSQL, and
a brand-new empty database for migration tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from arena.store.db import Database
from support.empty_store import empty_store


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A database at the newest schema with every table empty."""
    with empty_store(database_url) as database:
        yield database


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request, tmp_path) -> Iterator[str]:
    """A URL to a database with no tables at all (a new PostgreSQL database per test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_url")  # skips (or fails in CI) without a server
    import psycopg

    admin = os.environ.get("ARENA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"arena_store_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
