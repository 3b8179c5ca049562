"""``arena pipeline``: ``run`` tags the store's battles (then dedup and the voter screen);
``eval-tags`` scores the taggers against labelled prompts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

LLM_MODULES = ("arena.pipeline.labeller", "arena.pipeline.llm_taggers")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _database_url(database_url: str | None) -> str:
    from sqlalchemy.engine import make_url

    from arena.config import database_url_or_default
    from arena.store.db import is_sqlite

    url = database_url_or_default(database_url)
    if is_sqlite(url):
        path = make_url(url).database
        if path and path != ":memory:" and not Path(path).is_file():
            raise _fail(f"no database at {path} (start `arena serve` or pass --database-url)")
    return url


def _llm_taggers() -> tuple[Any, ...] | None:
    """The LLM taggers, or None when their modules are not installed."""
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in LLM_MODULES):
        return None
    from arena.pipeline.llm_taggers import LLM_TAGGERS

    return tuple(LLM_TAGGERS)


def _deterministic_taggers() -> tuple[Any, ...]:
    """The built-in taggers plus the moderation word list ``arena serve`` uses, if any."""
    import importlib.util

    from arena.pipeline.taggers import DETERMINISTIC_TAGGERS

    if importlib.util.find_spec("arena.pipeline.moderation_tagger") is None:
        return DETERMINISTIC_TAGGERS
    from arena.config import Settings
    from arena.pipeline.moderation_tagger import moderation_taggers

    return (*DETERMINISTIC_TAGGERS, *moderation_taggers(Settings()))


def _open_labeller(model: str, config: Path | None, concurrency: int) -> tuple[Any, Any]:
    """(labeller, LLM taggers) for ``--labeller``; exits 2 with a message when impossible."""
    taggers = _llm_taggers()
    if taggers is None:
        raise _fail("LLM taggers are not installed in this version of arena")
    if config is not None and not config.is_file():
        raise _fail(f"no model registry at {config}")
    from arena.pipeline.labeller import open_labeller

    return open_labeller(model, config=config, concurrency=concurrency), taggers


def _print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Pipeline run")
    for column in ("tagger", "tagged", "up to date", "unparsable", "errors"):
        table.add_column(column, justify="left" if column == "tagger" else "right")
    for name, counts in report.taggers.items():
        table.add_row(
            name,
            str(counts.tagged),
            str(counts.up_to_date),
            str(counts.unparsable),
            str(counts.errors),
        )
    console.print(table)
    by_reason: dict[str, list[str]] = {}
    for name, why in report.skipped.items():
        by_reason.setdefault(why, []).append(name)
    for why, names in by_reason.items():
        console.print(f"skipped {', '.join(names)}: {why}", highlight=False)
    if report.dedup is not None:
        d = report.dedup
        console.print(
            f"dedup: {d.battles} battles, {d.high_freq} with a high-frequency prompt, "
            f"{d.not_sampled} not sampled; {d.written} tags written",
            highlight=False,
        )
    screen = report.voter_screen
    if screen is None:
        console.print(f"voter screen: {report.voter_screen_note}", highlight=False)
    else:
        # The screen's own summary starts with "voter screen".
        summary = screen.summary() if hasattr(screen, "summary") else f"voter screen: {screen}"
        console.print(summary, highlight=False)


def run_command(
    database_url: str | None = typer.Option(
        None, "--database-url", help="SQLAlchemy URL (default: the database `arena serve` uses)."
    ),
    labeller: str | None = typer.Option(
        None, "--labeller", help="Model of the registry that labels hard/IF/math/creative tags."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Model registry file for --labeller (default: as `arena serve`)."
    ),
    concurrency: int = typer.Option(16, "--concurrency", min=1, help="Labeller calls at once."),
    batch_size: int = typer.Option(500, "--batch-size", min=1, help="Battles per commit."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Processes for the deterministic taggers (large stores)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    input_file: Path | None = typer.Option(
        None, "--input", help="Tag this clean-battle file (JSON, JSONL, Parquet), not the store."
    ),
    out: Path | None = typer.Option(None, "--out", help="Where --input's tagged battles go."),
    alpha: float = typer.Option(
        0.01, "--alpha", help="Voter screen: flag a voter when its p-value is at most this."
    ),
    min_votes: int = typer.Option(
        20, "--min-votes", help="Voter screen: judge only voters with at least this many votes."
    ),
) -> None:
    """Tag new battles (language, coding, multi-turn, long query, prompt hash; LLM tags with
    --labeller), recompute dedup and screen voters. Reruns only tag what is new or changed."""
    from sqlalchemy.exc import SQLAlchemyError

    from arena.pipeline.runner import NO_LABELLER, run_pipeline
    from arena.store.db import Database
    from arena.store.migrate import upgrade

    if not 0 < alpha < 1:
        raise typer.BadParameter(f"must be between 0 and 1, got {alpha}", param_hint="--alpha")
    if min_votes < 1:
        raise typer.BadParameter(f"must be at least 1, got {min_votes}", param_hint="--min-votes")
    if (input_file is None) != (out is None):
        raise typer.BadParameter("--input and --out go together")
    if input_file is not None and database_url is not None:
        raise typer.BadParameter("give --input FILE or --database-url, not both")
    if input_file is not None and out is not None:
        rows = _read_battle_file(input_file)  # a bad file fails before any labeller opens
        opened = _open_labeller(labeller, config, concurrency) if labeller else None
        labellers = opened[1] if opened else (_llm_taggers() or ())
        report = _tag_file(rows, out, labellers, opened, concurrency, workers)
        _show(report, as_json)
        return
    url = _database_url(database_url)
    try:
        upgrade(url)  # the pipeline's tables come with a migration; safe to repeat
    except SQLAlchemyError as e:
        raise _fail(f"cannot open the database: {e}") from None
    opened = _open_labeller(labeller, config, concurrency) if labeller else None
    labellers = opened[1] if opened else (_llm_taggers() or ())
    db = Database(url)
    try:
        report = run_pipeline(
            db,
            taggers=_deterministic_taggers(),
            labellers=labellers,
            ask=opened[0].ask if opened else None,
            close_ask=opened[0].aclose if opened else None,
            labeller_model=labeller if opened else None,
            no_labeller_reason=NO_LABELLER,
            concurrency=concurrency,
            batch_size=batch_size,
            workers=workers,
            progress=progress and not as_json,
            screen_options={"alpha": alpha, "min_votes": min_votes},
        )
    finally:
        db.dispose()
    _show(report, as_json)


def _show(report: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        _print_report(report)


def _read_battle_file(source: Path) -> list[dict[str, Any]]:
    from arena.pipeline.battle_files import BattleFileError, read_rows

    try:
        return read_rows(source)
    except BattleFileError as e:
        raise _fail(str(e)) from None


def _tag_file(
    rows: list[dict[str, Any]],
    out: Path,
    labellers: Any,
    opened: Any,
    concurrency: int,
    workers: int,
) -> Any:
    """Tag clean-battle rows (``arena.pipeline.battle_files``) and write them to ``out``."""
    from arena.pipeline.battle_files import tag_rows, write_rows

    try:
        report = tag_rows(
            rows,
            taggers=_deterministic_taggers(),
            labellers=labellers,
            ask=opened[0].ask if opened else None,
            close_ask=opened[0].aclose if opened else None,
            concurrency=concurrency,
            workers=workers,
        )
        write_rows(rows, out)
    except OSError as e:
        raise _fail(f"cannot write {out}: {e}") from None
    typer.secho(f"wrote {len(rows)} battles to {out}", err=True)
    return report


def eval_tags_command(
    labelled: Path | None = typer.Argument(
        None, help='JSON Lines: {"prompt" or "turns", "labels": {"coding": true, ...}}.'
    ),
    mt_bench: Path | None = typer.Option(
        None, "--mt-bench", help="MT-Bench question.jsonl (coding, math, creative_writing)."
    ),
    arena_hard: Path | None = typer.Option(
        None, "--arena-hard", help="Arena-Hard question.jsonl (every prompt hard)."
    ),
    labeller: str | None = typer.Option(
        None, "--labeller", help="Also score the LLM taggers with this registry model."
    ),
    config: Path | None = typer.Option(None, "--config", help="Model registry for --labeller."),
    concurrency: int = typer.Option(16, "--concurrency", min=1, help="Labeller calls at once."),
    taggers: list[str] | None = typer.Option(
        None, "--tagger", help="Score only this LLM tagger (repeat for several; default all)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Score only the first N prompts of each set."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Precision, recall, accuracy and support of each tagger against labelled prompts.
    ``--tagger`` and ``--limit`` keep a run with a slow labeller short."""
    from arena.pipeline import tag_eval

    sources: list[tuple[str, Path, Any]] = [
        (name, path, reader)
        for name, path, reader in (
            ("labelled", labelled, tag_eval.read_labelled),
            ("mt-bench", mt_bench, tag_eval.mt_bench_items),
            ("arena-hard", arena_hard, tag_eval.arena_hard_items),
        )
        if path is not None
    ]
    if not sources:
        raise typer.BadParameter("give a labelled file, --mt-bench FILE or --arena-hard FILE")
    loaded = []
    for name, path, reader in sources:
        if not Path(path).is_file():
            raise _fail(f"no such file: {path}")
        try:
            loaded.append((name, path, reader(Path(path))[:limit]))
        except tag_eval.LabelledFileError as e:
            raise _fail(str(e)) from None
    if taggers and not labeller:
        raise typer.BadParameter("--tagger needs --labeller MODEL")
    chosen = _chosen_taggers(_llm_taggers() or (), taggers) if taggers else None
    opened = _open_labeller(labeller, config, concurrency) if labeller else None
    if opened is not None and chosen is not None:
        opened = (opened[0], chosen)
    llm = _llm_predictions([items for *_, items in loaded], opened, concurrency)
    results: list[dict[str, Any]] = []
    for (name, path, items), extra in zip(loaded, llm, strict=True):
        predictions = _merge(tag_eval.deterministic_predictions(items), extra)
        metrics = tag_eval.evaluate(items, predictions)
        labels = sorted({k for item in items for k in item.labels})
        results.append(
            {
                "source": name,
                "path": str(path),
                "prompts": len(items),
                "metrics": {k: m.to_dict() for k, m in metrics.items()},
                "not_scored": [k for k in labels if k not in metrics],
            }
        )
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    else:
        _print_eval(results, with_labeller=opened is not None)


def _chosen_taggers(available: tuple[Any, ...], names: list[str]) -> tuple[Any, ...]:
    """The LLM taggers named by ``--tagger``, in their usual order; exit 2 on an unknown one."""
    known = {t.name: t for t in available}
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise _fail(f"unknown tagger {', '.join(unknown)}; choose from {', '.join(known)}")
    return tuple(t for t in available if t.name in names)


def _llm_predictions(sets: list[Any], opened: Any, concurrency: int) -> list[list[dict]]:
    """The LLM taggers' verdicts on every set, on one event loop (the labeller's clients
    belong to it), closing the labeller at the end; empty verdicts without a labeller."""
    if opened is None:
        return [[{} for _ in items] for items in sets]
    import asyncio

    from arena.pipeline.tag_eval import labeller_predictions

    labeller, taggers = opened

    async def run() -> list[list[dict]]:
        try:
            return [
                await labeller_predictions(items, taggers, labeller.ask, concurrency=concurrency)
                for items in sets
            ]
        finally:
            await labeller.aclose()

    return asyncio.run(run())


def _merge(first: list[dict], second: list[dict]) -> list[dict]:
    return [{**a, **b} for a, b in zip(first, second, strict=True)]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_eval(results: list[dict[str, Any]], *, with_labeller: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    hint = "" if with_labeller else " (LLM tags need --labeller MODEL)"
    for result in results:
        if result["metrics"]:
            table = Table(title=f"{result['source']}: {result['prompts']} prompts")
            for column in ("label", "precision", "recall", "accuracy", "support", "no verdict"):
                table.add_column(column, justify="left" if column == "label" else "right")
            for label, m in result["metrics"].items():
                table.add_row(
                    label,
                    _fmt(m["precision"]),
                    _fmt(m["recall"]),
                    _fmt(m["accuracy"]),
                    str(m["support"]),
                    str(m["missing"]),
                )
            console.print(table)
        if result["not_scored"]:
            console.print(
                f"{result['source']}: not scored: {', '.join(result['not_scored'])}{hint}",
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    """Add ``arena pipeline`` to the root app."""
    pipeline_app = typer.Typer(
        help="Tag, dedup and screen the store's battles.", no_args_is_help=True
    )
    pipeline_app.command("run")(run_command)
    pipeline_app.command("eval-tags")(eval_tags_command)
    app.add_typer(pipeline_app, name="pipeline")
