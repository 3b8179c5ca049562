"""Migrations build the schema from nothing on both backends, re-run as no-ops, and agree
with the ORM models (what ``alembic check`` verifies)."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from arena.store.db import Database
from arena.store.migrate import current_revision, downgrade, head_revision, upgrade
from arena.store.models import Base

TABLES = {
    "alembic_version",
    "api_keys",
    "arena_sessions",
    "battle_tags",
    "battles",
    "conversations",
    "images",
    "leaderboard_leases",
    "leaderboard_sets",
    "message_images",
    "messages",
    "redteam_players",
    "redteam_rounds",
    "redteam_turns",
    "release_opt_outs",
    "replica_settings",
    "voter_cleared_sessions",
    "voter_flags",
    "votes",
    "workers",
}


def _diff(url: str) -> list:
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        db.dispose()


def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        return set(inspect(db.engine).get_table_names())
    finally:
        db.dispose()


def test_upgrade_from_empty_is_idempotent(empty_database_url: str) -> None:
    assert _tables(empty_database_url) == set()
    assert current_revision(empty_database_url) is None
    upgrade(empty_database_url)
    assert _tables(empty_database_url) == TABLES
    assert current_revision(empty_database_url) == head_revision()
    upgrade(empty_database_url)  # a second start changes nothing
    assert current_revision(empty_database_url) == head_revision()
    assert _tables(empty_database_url) == TABLES


def test_models_and_migrations_agree(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    assert _diff(empty_database_url) == []


def test_downgrade_to_base_and_back(empty_database_url: str) -> None:
    upgrade(empty_database_url)
    downgrade(empty_database_url, "base")
    assert _tables(empty_database_url) <= {"alembic_version"}
    upgrade(empty_database_url)
    assert _diff(empty_database_url) == []


def test_concurrent_upgrades_queue_instead_of_failing(empty_database_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            upgrade(empty_database_url)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert current_revision(empty_database_url) == head_revision()


def test_sqlite_pragmas(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    db = Database(sqlite_url)
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        db.dispose()


def test_plain_postgresql_url_uses_psycopg() -> None:
    db = Database("postgresql://u@127.0.0.1:1/x")
    assert db.engine.dialect.driver == "psycopg"
    db.dispose()


def test_from_settings_creates_the_data_dir(tmp_path) -> None:
    from arena.config import Settings

    settings = Settings(data_dir=tmp_path / "nested" / "data", database_url=None)
    db = Database.from_settings(settings)
    try:
        assert (tmp_path / "nested" / "data").is_dir()
        upgrade(db.url)
        assert (tmp_path / "nested" / "data" / "arena.db").is_file()
        with db.session() as session:
            assert session.connection().exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        db.dispose()
