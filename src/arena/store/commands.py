"""CLI commands of arena.store (registered by arena.cli): ``arena db upgrade`` and
``arena export battles``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"


def _url(database_url: str | None) -> str:
    if database_url:
        return database_url
    from arena.config import Settings

    return Settings().resolved_database_url()


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
    export_app = typer.Typer(help="Export stored data.", no_args_is_help=True)

    @db_app.command("upgrade")
    def upgrade(
        database_url: str | None = typer.Option(
            None,
            "--database-url",
            help="SQLAlchemy URL (default: ARENA_DATABASE_URL or the "
            "SQLite file under ARENA_DATA_DIR).",
        ),
    ) -> None:
        """Create or migrate the database schema to the newest version (safe to repeat)."""
        from arena.store.db import is_sqlite
        from arena.store.migrate import current_revision, upgrade

        url = _url(database_url)
        if database_url is None and is_sqlite(url):
            from arena.config import Settings

            Settings().data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(url)
        typer.echo(f"database at revision {current_revision(url)}")

    @export_app.command("battles")
    def battles(
        out: Path = typer.Option(..., "--out", help="File to write."),
        fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format", help="jsonl or parquet."),
        database_url: str | None = typer.Option(
            None, "--database-url", help="SQLAlchemy URL (default: the configured database)."
        ),
        include_leaked: bool = typer.Option(
            False, "--include-leaked", help="Keep battles where a model revealed its identity."
        ),
        anony_only: bool = typer.Option(
            False, "--anony-only", help="Only anonymous battles (names hidden until the vote)."
        ),
    ) -> None:
        """Write voted battles in the public clean-battle layout."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import OperationalError

        from arena.store.db import Database, is_sqlite
        from arena.store.export import export_battles
        from arena.store.migrate import current_revision

        url = _url(database_url)
        if is_sqlite(url):
            path = make_url(url).database
            if path and path != ":memory:" and not Path(path).exists():
                _fail(f"no database file at {path}")
        try:
            if current_revision(url) is None:
                _fail("the database has no arena schema; run `arena db upgrade` first")
        except OperationalError as e:
            _fail(f"cannot open the database: {e.orig}")
        db = Database(url)
        try:
            count = export_battles(
                db, out, fmt=fmt.value, anony_only=anony_only, include_leaked=include_leaked
            )
        finally:
            db.dispose()
        typer.echo(f"wrote {count} battles to {out}")

    app.add_typer(db_app, name="db")
    app.add_typer(export_app, name="export")
