"""Alembic environment for the store: runs on a connection handed over by
``arena.store.migrate`` or, from the alembic command line, on ``ARENA_DATABASE_URL``."""

from __future__ import annotations

import os

from alembic import context

from arena.store.db import Database, normalize_url
from arena.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        **kwargs,
    )


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or os.environ["ARENA_DATABASE_URL"]
    _configure(url=normalize_url(url), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection, transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ["ARENA_DATABASE_URL"]
    db = Database(url)
    try:
        with db.engine.begin() as connection:
            _configure(connection=connection, transactional_ddl=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        db.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
