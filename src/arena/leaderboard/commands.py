"""CLI commands of arena.leaderboard (registered by arena.cli).

``arena leaderboard BATTLES`` rates battles from a JSON/JSONL/Parquet file or a database URL
and prints a table (or JSON/CSV/Markdown), optionally writing plots and the versioned
artifacts the web page serves. Heavy libraries are imported inside the command.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class IntervalMethod(StrEnum):
    bootstrap = "bootstrap"
    sandwich = "sandwich"


class TieModel(StrEnum):
    half = "half"
    davidson = "davidson"


class Simultaneous(StrEnum):
    none = "none"
    bonferroni = "bonferroni"
    chi2 = "chi2"


class Reweight(StrEnum):
    none = "none"
    ipw = "ipw"


class StyleNormalization(StrEnum):
    reference = "reference"
    fastchat = "fastchat"


def parse_anchor(text: str | None) -> tuple[str, float] | None:
    """``MODEL=RATING`` (the last ``=`` splits, so model names may contain one)."""
    if not text:
        return None
    model, sep, value = text.rpartition("=")
    if not sep or not model:
        raise typer.BadParameter(
            "expected MODEL=RATING, e.g. gpt-4-0314=1000", param_hint="--anchor"
        )
    try:
        return model, float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number", param_hint="--anchor") from None


def leaderboard_command(
    battles: str = typer.Argument(
        ..., help="Battles: a .json (array), .jsonl or .parquet file, or a database URL."
    ),
    category: str = typer.Option(
        "full",
        "--category",
        "-c",
        help="full, hard_prompts, coding, math, instruction_following, creative_writing, "
        "multi_turn, long_query or language:<name>.",
    ),
    style_control: bool = typer.Option(
        False, "--style-control/--no-style-control", help="Control for answer length and markdown."
    ),
    ci: IntervalMethod = typer.Option(IntervalMethod.bootstrap, "--ci", help="Interval method."),
    rounds: int = typer.Option(100, "--rounds", min=2, help="Bootstrap rounds."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    confidence: float = typer.Option(0.95, "--confidence", min=0.5, max=0.999),
    simultaneous: Simultaneous = typer.Option(
        Simultaneous.none,
        "--simultaneous",
        help="Intervals that hold for all models at once (Bonferroni or chi-square).",
    ),
    ties: TieModel = typer.Option(
        TieModel.half, "--ties", help="Ties as half a win each way, or Davidson's tie model."
    ),
    reweight: Reweight = typer.Option(
        Reweight.none,
        "--reweight",
        help="ipw: weight battles by inverse pair frequency (uneven sampling of pairs).",
    ),
    style_normalization: StyleNormalization = typer.Option(
        StyleNormalization.reference,
        "--style-normalization",
        help="Style feature normalisation: reference (a-b)/(a+b), fastchat (a-b)/(a+b+1).",
    ),
    min_battles: int = typer.Option(
        300,
        "--min-battles",
        min=0,
        help="Models with fewer battles are listed as preliminary, unranked (0: rank all).",
    ),
    elo: bool = typer.Option(
        False, "--elo", help="Add online Elo with bootstrap intervals (one pass per round)."
    ),
    votes_needed: float | None = typer.Option(
        None,
        "--votes-needed",
        min=0.1,
        help="Add the battles each model still needs for an interval this wide (points).",
    ),
    anchor: str | None = typer.Option(
        None, "--anchor", help="Pin one model's rating, e.g. gpt-4-0314=1000."
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f"),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write the output here."),
    plots: Path | None = typer.Option(
        None, "--plots", help="Write PNG and interactive HTML plots to this folder."
    ),
    artifacts: Path | None = typer.Option(
        None,
        "--artifacts",
        help="Write JSON+Parquet artifacts for every category, with and without style "
        "control, to this folder (what the web page serves).",
    ),
    artifact_categories: str = typer.Option(
        "all", "--artifact-categories", help="'all' or a comma-separated list of categories."
    ),
    min_category_battles: int = typer.Option(
        30, "--min-category-battles", min=1, help="With 'all', skip smaller categories."
    ),
    anony_only: bool = typer.Option(
        True, "--anony-only/--all-battles", help="Only anonymous battles (default)."
    ),
    dedup_sampled: bool = typer.Option(
        False, "--dedup-sampled", "--dedup", help="Only battles the dedup step sampled."
    ),
    include_flagged: bool = typer.Option(
        False,
        "--include-flagged",
        help="Keep votes of voters the anomalous-voter screen flagged (database input).",
    ),
    include_leaked: bool = typer.Option(
        False, "--include-leaked", help="Keep battles flagged as leaked (names revealed)."
    ),
    since: str | None = typer.Option(None, "--since", help="Only battles at/after this date."),
    until: str | None = typer.Option(None, "--until", help="Only battles before this date."),
    min_votes: int = typer.Option(0, "--min-votes", min=0, help="Drop models with fewer battles."),
    exclude_model: list[str] = typer.Option(
        [], "--exclude-model", help="Leave this model out (repeatable)."
    ),
    exclude_ties: bool = typer.Option(False, "--exclude-ties", help="Drop tied battles."),
) -> None:
    """Rate models from battles with Bradley–Terry and print the leaderboard."""
    from rich.console import Console

    from arena.errors import ArenaError

    err = Console(stderr=True)
    try:
        _run(
            battles=battles,
            category=category,
            style_control=style_control,
            ci=ci.value,
            rounds=rounds,
            seed=seed,
            confidence=confidence,
            anchor=parse_anchor(anchor),
            method_args={
                "simultaneous": None if simultaneous == Simultaneous.none else simultaneous.value,
                "ties": ties.value,
                "reweight": None if reweight == Reweight.none else reweight.value,
                "style_normalization": style_normalization.value,
                "min_battles": min_battles,
                "elo": elo,
                "votes_needed_width": votes_needed,
            },
            fmt=fmt.value,
            out=out,
            plots=plots,
            artifacts=artifacts,
            artifact_categories=artifact_categories,
            min_category_battles=min_category_battles,
            include_flagged=include_flagged,
            filter_args={
                "anony_only": anony_only,
                "dedup_sampled_only": dedup_sampled,
                "include_leaked": include_leaked,
                "since": since,
                "until": until,
                "min_votes": min_votes,
                "exclude_models": tuple(exclude_model),
                "exclude_ties": exclude_ties,
            },
            err=err,
        )
    except ArenaError as e:
        err.print(f"[red]error:[/red] {e.message}", markup=True, highlight=False)
        raise typer.Exit(code=2) from None


def _run(
    *,
    battles: str,
    category: str,
    style_control: bool,
    ci: str,
    rounds: int,
    seed: int,
    confidence: float,
    anchor: tuple[str, float] | None,
    method_args: dict,
    fmt: str,
    out: Path | None,
    plots: Path | None,
    artifacts: Path | None,
    artifact_categories: str,
    min_category_battles: int,
    filter_args: dict,
    err,
    include_flagged: bool = False,
) -> None:
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from arena.leaderboard.artifacts import write_artifact_set
    from arena.leaderboard.build import build_leaderboards, resolve_categories
    from arena.leaderboard.compute import RatingSettings
    from arena.leaderboard.filters import BattleFilters, canonical_category, parse_date
    from arena.leaderboard.render import render, to_rich_table

    filters = BattleFilters(
        **{
            **filter_args,
            "since": parse_date(filter_args["since"]),
            "until": parse_date(filter_args["until"]),
        }
    )
    settings = RatingSettings(
        ci=ci, rounds=rounds, seed=seed, confidence=confidence, anchor=anchor, **method_args
    )
    category = canonical_category(category)

    with err.status(f"Loading battles from {battles}…"):
        loaded = _load(battles, include_flagged=include_flagged, err=err)
    err.print(f"Loaded {loaded.count} battles (sha256 {loaded.data_sha256[:12]}).")

    if artifacts is not None:
        requested = [c.strip() for c in artifact_categories.split(",") if c.strip()]
        categories = resolve_categories(
            loaded, filters, requested, min_category_battles=min_category_battles
        )
        if category not in categories:
            categories.insert(0, category)
        style_modes: tuple[bool, ...] = (False, True)
    else:
        categories, style_modes = [category], (style_control,)

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with progress:
        task = progress.add_task("Fitting", total=len(categories) * len(style_modes))

        def on_step(label: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=f"Fitting {label}")

        result = build_leaderboards(
            loaded,
            filters=filters,
            settings=settings,
            categories=categories,
            style_modes=style_modes,
            on_step=on_step,
            skip_empty=artifacts is not None,
            with_timeline=artifacts is not None,
        )

    board = next(
        (b for b in result.boards if b.category == category and b.style_control == style_control),
        None,
    )
    if board is None:
        from arena.errors import BadRequest

        raise BadRequest(f"no battles left to rate for category {category!r}", param="category")
    for warning in board.meta.get("warnings") or []:
        err.print(f"[yellow]warning:[/yellow] {escape(str(warning))}", markup=True, highlight=False)
    if artifacts is not None:
        written = write_artifact_set(
            artifacts, result.boards, snapshot=result.snapshot, meta=result.meta
        )
        err.print(f"Wrote {len(written.entries)} leaderboards to {written.directory}")
    if plots is not None:
        from arena.leaderboard.plots import write_plots

        files = write_plots(
            select_for_plots(loaded, filters, category), board, plots, settings=settings
        )
        err.print(f"Wrote {len(files)} plot files to {plots}")

    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(board, fmt), encoding="utf-8")
        err.print(f"Wrote {fmt} to {out}")
    elif fmt == "table":
        from rich.console import Console

        Console().print(to_rich_table(board))
    else:
        typer.echo(render(board, fmt), nl=False)


def _load(battles: str, *, include_flagged: bool, err):
    """Battles from a file, or from a database without flagged voters' votes unless
    ``include_flagged`` (a warning says how many were left out)."""
    from arena.leaderboard.battle_table import is_database_url, load_battles

    if not is_database_url(battles):
        return load_battles(battles)
    import hashlib
    import json

    from sqlalchemy.exc import SQLAlchemyError

    from arena.errors import BadRequest
    from arena.leaderboard.battle_table import LoadedBattles, normalize_rows
    from arena.store.db import Database
    from arena.store.export import clean_battles

    db = Database(battles)
    counts: dict[str, int] = {}
    try:
        rows = clean_battles(db, include_flagged=include_flagged, counts=counts)
    except SQLAlchemyError as e:  # unreachable or unmigrated: say so, no traceback
        raise BadRequest(f"cannot read battles from the database: {e}", param="battles") from e
    finally:
        db.dispose()
    if counts.get("flagged_excluded"):
        err.print(
            f"[yellow]warning:[/yellow] left out {counts['flagged_excluded']} votes of flagged "
            "voters (--include-flagged keeps them)",
            markup=True,
            highlight=False,
        )
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    return LoadedBattles(normalize_rows(rows), battles, digest)


def select_for_plots(loaded, filters, category):
    from arena.leaderboard.filters import select_battles

    return select_battles(loaded.frame, filters, category).frame


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("leaderboard")(leaderboard_command)
