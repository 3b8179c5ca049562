"""``arena export sft`` and ``arena export preferences``: the checks and messages around
``battle_rows`` and ``training_records`` (no training libraries needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import typer

from arena.training.battle_rows import BattleDataError, BattleSelection, ReadReport


def _scrubber(phone_regions: Sequence[str]) -> Any:
    from arena.pipeline.release import scrubber_for_regions

    return scrubber_for_regions(phone_regions)


def _source(battles: Path | None, database_url: str | None) -> tuple[str, bool]:
    if battles is not None and database_url is not None:
        raise typer.BadParameter(
            "give --battles or --database-url, not both", param_hint="--battles"
        )
    if battles is not None:
        if not battles.is_file():
            raise typer.BadParameter(f"no battles file at {battles}", param_hint="--battles")
        return str(battles), False
    from arena.config import database_url_or_default
    from arena.pipeline.release import check_database

    database_url = database_url_or_default(database_url)
    check_database(database_url)
    return database_url, True


def run_export(
    *,
    out: Path,
    battles: Path | None,
    database_url: str | None,
    selection: BattleSelection,
    phone_regions: Sequence[str],
    make_records: Callable[[Iterable[dict[str, Any]], Counter[str]], Iterator[dict[str, Any]]],
    what: str,
) -> None:
    """Read, select, scrub, turn into records, write; say what was written and left out."""
    from arena.errors import BadRequest
    from arena.training.battle_rows import training_battles
    from arena.training.training_records import write_jsonl

    if out.is_dir():
        raise typer.BadParameter(f"{out} is a directory; give a file name", param_hint="--out")
    scrubber = _scrubber(phone_regions)
    source, from_database = _source(battles, database_url)
    report = ReadReport()
    counts: Counter[str] = Counter()
    rows = training_battles(
        source, selection, from_database=from_database, scrubber=scrubber, report=report
    )
    try:
        written = write_jsonl(make_records(rows, counts), out)
    except (BattleDataError, BadRequest) as e:
        hint = "--battles" if battles else "--category"
        raise typer.BadParameter(str(e), param_hint=hint) from None
    skipped = {k: v for k, v in counts.items() if k != "written"}
    left_out = Counter(report.excluded or {})
    left_out["not selected"] = report.read - report.kept
    left_out.update(skipped)
    said = ", ".join(f"{n} {k}" for k, n in sorted(left_out.items()) if n) or "none"
    found = ", ".join(f"{n} {k}" for k, n in sorted((report.scrubbed or {}).items())) or "nothing"
    typer.echo(f"wrote {written} {what} to {out} from {report.kept} of {report.read} battles")
    typer.echo(f"left out: {said}; scrubbed: {found}")


def selection_from(
    languages: list[str], categories: list[str], keep_duplicates: bool, *, anony_only: bool
) -> BattleSelection:
    from arena.training.battle_rows import check_categories

    try:
        check_categories(categories)
    except BattleDataError as e:
        raise typer.BadParameter(str(e), param_hint="--category") from None
    return BattleSelection(
        languages=tuple(x.strip() for x in languages if x.strip()),
        categories=tuple(categories),
        dedup_sampled_only=not keep_duplicates,
        anony_only=anony_only,
    )
