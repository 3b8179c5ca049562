"""``arena redteam``: the red-team game's boards from the command line.

``arena redteam leaderboard`` reads the ended rounds of the configured database (or
``--database-url``), fits the players, models and challenges boards and prints them as tables,
JSON or CSV; ``--out DIR`` also writes ``boards.json`` (with the fit's settings and counts),
``players.csv``, ``models.csv`` and ``challenges.csv``. A database without any ended round is
not an error: the boards are empty, the command says so and exits 0. A bad URL or a database
that is not migrated exits 2 with the reason.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer


class BoardFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def register(app: typer.Typer) -> None:
    """Add ``arena redteam`` to the root app."""
    redteam_app = typer.Typer(help="The red-team game: boards of players, models, challenges.")

    @redteam_app.command("leaderboard")
    def leaderboard(
        database_url: str | None = typer.Option(
            None, "--database-url", help="SQLAlchemy URL (default: the configured database)."
        ),
        fmt: BoardFormat = typer.Option(
            BoardFormat.table, "--format", help="table (Rich tables), json or csv on stdout."
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            help="Folder to write boards.json, players.csv, models.csv and challenges.csv to.",
        ),
        confidence: float = typer.Option(
            0.95, "--confidence", help="Confidence level of the intervals, between 0 and 1."
        ),
        include_duplicates: bool = typer.Option(
            False,
            "--include-duplicates",
            help="Count every win of a repeated attack (by default the first one only).",
        ),
        preliminary_rounds: int = typer.Option(
            10,
            "--preliminary-rounds",
            min=1,
            help="Mark members with fewer rated rounds than this as preliminary.",
        ),
    ) -> None:
        """Fit and show the three red-team boards from the stored rounds."""
        from arena.config import database_url_or_default
        from arena.redteam.board_output import run_leaderboard

        run_leaderboard(
            url=database_url_or_default(database_url),
            fmt=fmt.value,
            out=out,
            confidence=confidence,
            include_duplicates=include_duplicates,
            preliminary_rounds=preliminary_rounds,
        )

    app.add_typer(redteam_app, name="redteam")
