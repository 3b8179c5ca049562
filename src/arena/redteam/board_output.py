"""What ``arena redteam leaderboard`` prints and writes: Rich tables, JSON, CSV, artifacts.

The artifacts of ``--out DIR``: ``boards.json`` (the JSON of ``GET /api/redteam/leaderboard``
plus ``settings``, how the boards were fitted, and ``counts``) and one CSV per board
(``players.csv``, ``models.csv``, ``challenges.csv``; columns ``rank, name, rating, lower,
upper, rounds, successes, preliminary``, best first; ``preliminary`` is ``true`` or ``false``).
Each file is written whole or not at all. The tables mark a preliminary member (too few rounds
to trust its rank) with ``*`` after its name and explain the mark under the table.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from arena.atomic_files import write_text_atomic
from arena.redteam.boards_from_store import (
    BOARD_NAMES,
    ROW_FIELDS,
    StoreBoards,
    boards_payload,
    load_store_boards,
)
from arena.redteam.ratings import PRELIMINARY_ROUNDS

BOARD_TITLES = {
    "players": "Players (strongest attacker first)",
    "models": "Models (most robust first)",
    "challenges": "Challenges (hardest first)",
}
FIT_SETTINGS = {"model": "grouped Bradley-Terry", "scale": 400.0, "base": 10.0, "init": 1000.0}
NOTHING_ENDED = "No red-team round has ended yet: the boards are empty."
PRELIMINARY_MARK = "*"


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    # Spelled as in the JSON, not as Python's True/False.
    return {**row, "preliminary": "true" if row["preliminary"] else "false"}


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ROW_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(_csv_row(r) for r in rows)
    return buffer.getvalue()


def combined_csv(document: dict[str, Any]) -> str:
    """The three boards in one CSV on stdout, told apart by a leading ``board`` column."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["board", *ROW_FIELDS], lineterminator="\n")
    writer.writeheader()
    for name in BOARD_NAMES:
        writer.writerows({"board": name, **_csv_row(row)} for row in document[name])
    return buffer.getvalue()


def artifact_document(fitted: StoreBoards, confidence: float) -> dict[str, Any]:
    """``boards.json``: the API's JSON plus the fit's settings and counts."""
    payload = boards_payload(fitted)
    boards = fitted.boards
    payload["settings"] = {
        **FIT_SETTINGS,
        "confidence": confidence,
        "interval": "sandwich",
        "preliminary_rounds": fitted.boards.preliminary_rounds,
        "include_duplicates": fitted.include_duplicates,
    }
    payload["counts"] = {
        "rounds": boards.n_rounds,
        "successes": fitted.successes,
        "players": len(boards.players.rows),
        "models": len(boards.models.rows),
        "challenges": len(boards.challenges.rows),
    }
    return payload


def write_artifacts(out: Path, document: dict[str, Any]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "boards.json"]
    write_text_atomic(written[0], json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    for name in BOARD_NAMES:
        path = out / f"{name}.csv"
        write_text_atomic(path, csv_text(document[name]))
        written.append(path)
    return written


def _interval(row: dict[str, Any]) -> str:
    # A null bound is one the data leave open (a member that never won, or never lost).
    lower = "-∞" if row["lower"] is None else f"{row['lower']:.0f}"
    upper = "∞" if row["upper"] is None else f"{row['upper']:.0f}"
    return f"{lower} to {upper}"


def preliminary_footnote(preliminary_rounds: int) -> str:
    return (
        f"{PRELIMINARY_MARK} preliminary: fewer than {preliminary_rounds} rated rounds, "
        "so the rating and rank may still move a lot"
    )


def print_tables(console: Console, document: dict[str, Any]) -> None:
    level = f"{document['confidence']:.0%}"
    for name in BOARD_NAMES:
        table = Table(title=BOARD_TITLES[name], caption=f"{level} intervals")
        for column in ("rank", "name", "rating", f"{level} interval", "rounds", "successes"):
            numeric = column not in ("name",)
            table.add_column(column, justify="right" if numeric else "left")
        for row in document[name]:
            rating = "?" if row["rating"] is None else f"{row['rating']:.0f}"
            table.add_row(
                str(row["rank"]),
                escape(row["name"]) + (f" {PRELIMINARY_MARK}" if row["preliminary"] else ""),
                rating,
                _interval(row),
                str(row["rounds"]),
                str(row["successes"]),
            )
        console.print(table)
        # Under the table, not in its caption: a caption wraps at the table's width.
        if any(row["preliminary"] for row in document[name]):
            console.print(escape(preliminary_footnote(document["preliminary_rounds"])))
    for warning in document["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise typer.BadParameter(
            f"{confidence} is not a confidence level; give a number between 0 and 1 such as 0.95",
            param_hint="--confidence",
        )


def _check_out(out: Path | None) -> None:
    if out is not None and out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is a file; give a folder", param_hint="--out")


def run_leaderboard(
    *,
    url: str,
    fmt: str,
    out: Path | None,
    confidence: float,
    include_duplicates: bool,
    preliminary_rounds: int = PRELIMINARY_ROUNDS,
) -> None:
    """The command: check the inputs (exit 2 with the reason), fit, print, write."""
    from arena.pipeline.release import check_database
    from arena.store.db import Database

    _check_confidence(confidence)
    _check_out(out)
    check_database(url)
    db = Database(url)
    try:
        fitted = load_store_boards(
            db,
            confidence=confidence,
            include_duplicates=include_duplicates,
            preliminary_rounds=preliminary_rounds,
        )
    finally:
        db.dispose()
    document = artifact_document(fitted, confidence)
    err = Console(stderr=True)
    if fitted.boards.n_rounds == 0:
        err.print(NOTHING_ENDED)
    if fmt == "json":
        typer.echo(json.dumps(boards_payload(fitted), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        typer.echo(combined_csv(document), nl=False)
    elif fitted.boards.n_rounds:
        print_tables(Console(), document)
    if out is not None:
        written = write_artifacts(out, document)
        err.print(f"wrote {', '.join(p.name for p in written)} to {escape(str(out))}")
