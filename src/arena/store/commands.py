"""CLI commands of arena.store (registered by arena.cli): ``arena db upgrade``,
``arena export battles``, ``arena export conversations``, ``arena export redteam`` and the
training exports ``arena export sft`` / ``arena export preferences`` (implemented in
``arena.training.export_commands``, which needs no training libraries)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"


def _url(database_url: str | None) -> str:
    from arena.config import database_url_or_default

    return database_url_or_default(database_url)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


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
        include_flagged: bool = typer.Option(
            False,
            "--include-flagged",
            help="Keep the votes of voters the anomalous-voter screen flagged.",
        ),
    ) -> None:
        """Write voted battles in the public clean-battle layout (flagged voters' votes left
        out unless --include-flagged)."""
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
                db,
                out,
                fmt=fmt.value,
                anony_only=anony_only,
                include_leaked=include_leaked,
                include_flagged=include_flagged,
            )
        finally:
            db.dispose()
        typer.echo(f"wrote {count} battles to {out}")

    @export_app.command("conversations")
    def conversations(
        out: Path = typer.Option(..., "--out", help="File to write; README.md goes beside it."),
        fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format", help="jsonl or parquet."),
        database_url: str | None = typer.Option(
            None, "--database-url", help="SQLAlchemy URL (default: the configured database)."
        ),
        phone_regions: list[str] = typer.Option(
            ["US"],
            "--phone-region",
            help="Region whose national phone format is scrubbed "
            "too (repeatable; international +… numbers are scrubbed whatever the region).",
        ),
    ) -> None:
        """Write the public conversation dataset: voted battles, scrubbed of personal data,
        without opted-out voters or flagged voters, with a dataset card."""
        from arena.pipeline.release import release_from_url

        release_from_url(_url(database_url), out, fmt.value, phone_regions)

    @export_app.command("redteam")
    def redteam(
        out: Path = typer.Option(..., "--out", help="File to write."),
        fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format", help="jsonl or parquet."),
        database_url: str | None = _DATABASE,
        eval_set: Path | None = typer.Option(
            None,
            "--eval-set",
            help="Also write the successful, non-duplicate attacks here as a red-team "
            "evaluation set (question JSONL for `arena judge answer` / `grade --mode redteam`).",
        ),
        phone_regions: list[str] = _PHONES,
    ) -> None:
        """Write every ended red-team round (scrubbed, opted-out sessions left out)."""
        from arena.store.redteam_export import export_redteam_from_url

        export_redteam_from_url(_url(database_url), out, fmt.value, eval_set, phone_regions)

    _register_training_exports(export_app)
    app.add_typer(db_app, name="db")
    app.add_typer(export_app, name="export")


class SftFormat(StrEnum):
    openai = "openai"
    sharegpt = "sharegpt"


class SftSides(StrEnum):
    preferred = "preferred"
    all = "all"


_BATTLES = typer.Option(
    None,
    "--battles",
    help="Read battles from this file (`arena export battles` or `arena export conversations` "
    "output: .jsonl, .json or .parquet) instead of the database.",
)
_DATABASE = typer.Option(
    None, "--database-url", help="SQLAlchemy URL (default: the configured database)."
)
_LANGUAGE = typer.Option(
    [], "--language", help="Keep battles in this language (repeatable; e.g. English)."
)
_CATEGORY = typer.Option(
    [],
    "--category",
    help="Keep battles of this leaderboard category (repeatable; e.g. coding, math, "
    "hard_prompts, creative_writing).",
)
_DUPLICATES = typer.Option(
    False, "--keep-duplicates", help="Keep over-asked prompts the dedup tagger did not sample."
)
_PHONES = typer.Option(
    ["US"], "--phone-region", help="Region whose national phone format is scrubbed too."
)


def _register_training_exports(export_app: typer.Typer) -> None:
    @export_app.command("sft")
    def sft(
        out: Path = typer.Option(..., "--out", help="JSON Lines file to write."),
        fmt: SftFormat = typer.Option(
            SftFormat.openai, "--format", help="openai (messages) or sharegpt (conversations)."
        ),
        sides: SftSides = typer.Option(
            SftSides.preferred,
            "--sides",
            help="preferred: the winning side (both on a tie, none when both were bad); "
            "all: every side.",
        ),
        battles: Path | None = _BATTLES,
        database_url: str | None = _DATABASE,
        languages: list[str] = _LANGUAGE,
        categories: list[str] = _CATEGORY,
        keep_duplicates: bool = _DUPLICATES,
        phone_regions: list[str] = _PHONES,
    ) -> None:
        """Write conversations for supervised fine-tuning, selected by tags and scrubbed."""
        from arena.training.export_commands import run_export, selection_from
        from arena.training.training_records import sft_records

        run_export(
            out=out,
            battles=battles,
            database_url=database_url,
            selection=selection_from(languages, categories, keep_duplicates, anony_only=False),
            phone_regions=phone_regions,
            make_records=lambda rows, counts: sft_records(
                rows, fmt=fmt.value, sides=sides.value, counts=counts
            ),
            what="conversations",
        )

    @export_app.command("preferences")
    def preferences(
        out: Path = typer.Option(..., "--out", help="JSON Lines file to write."),
        keep_ties: bool = typer.Option(
            False, "--keep-ties", help="Keep ties and both-bad votes (marked in `winner`)."
        ),
        battles: Path | None = _BATTLES,
        database_url: str | None = _DATABASE,
        languages: list[str] = _LANGUAGE,
        categories: list[str] = _CATEGORY,
        keep_duplicates: bool = _DUPLICATES,
        phone_regions: list[str] = _PHONES,
    ) -> None:
        """Write chosen/rejected pairs from anonymous votes (TRL's preference layout)."""
        from arena.training.export_commands import run_export, selection_from
        from arena.training.training_records import preference_records

        run_export(
            out=out,
            battles=battles,
            database_url=database_url,
            selection=selection_from(languages, categories, keep_duplicates, anony_only=True),
            phone_regions=phone_regions,
            make_records=lambda rows, counts: preference_records(
                rows, keep_ties=keep_ties, counts=counts
            ),
            what="preference pairs",
        )
