"""A migrated store with every table empty, for tests that count rows.

The PostgreSQL test database is shared by the whole session, so it is truncated before the
test and again after it (tests elsewhere expect it empty); SQLite files are per test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import text

from arena.store.db import Database
from arena.store.migrate import upgrade
from arena.store.models import Base


@contextlib.contextmanager
def empty_store(url: str) -> Iterator[Database]:
    upgrade(url)
    db = Database(url)
    truncate(db)
    try:
        yield db
    finally:
        truncate(db)
        db.dispose()


def truncate(db: Database) -> None:
    if db.engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
