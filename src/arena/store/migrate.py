"""Programmatic Alembic: bring a database to the newest schema using the migrations shipped
inside this package. Safe to call at every start and from several processes at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from arena.store.db import Database

_PACKAGE_DIR = Path(__file__).resolve().parent
# Any constant works; it only has to be the same for every process migrating one database.
_PG_MIGRATION_LOCK = 0x6172656E61


def alembic_config() -> Config:
    """An Alembic ``Config`` pointing at the packaged migrations (no ini file parsing of URLs,
    so passwords with ``%`` in them are safe)."""
    config = Config(str(_PACKAGE_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(_PACKAGE_DIR / "migrations"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(url: str) -> str | None:
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        db.dispose()


def _lock(connection: Connection) -> None:
    # SQLite: the transaction began with BEGIN IMMEDIATE, which already serializes writers.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (default: the newest). Idempotent.

    The whole upgrade runs in one transaction (both backends have transactional DDL) behind a
    lock, so a failed migration leaves the schema as it was and concurrent starts queue.
    """
    _run_locked(url, command.upgrade, revision)


def downgrade(url: str, revision: str) -> None:
    _run_locked(url, command.downgrade, revision)


def _run_locked(url: str, alembic_command: Callable[[Config, str], None], revision: str) -> None:
    """Run an Alembic command in one transaction behind the migration lock."""
    db = Database(url)
    try:
        with db.engine.begin() as connection:
            _lock(connection)
            config = alembic_config()
            config.attributes["connection"] = connection
            alembic_command(config, revision)
    finally:
        db.dispose()
