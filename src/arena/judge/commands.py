"""CLI commands of arena.judge: ``arena judge answer | grade | show | agreement``.

Heavy imports stay inside the command bodies so ``arena --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

T = TypeVar("T")

judge_app = typer.Typer(
    name="judge",
    help="LLM-as-a-judge: MT-Bench and Arena-Hard style automatic evaluation.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(judge_app, name="judge")


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop when installed (lower per-call overhead), else asyncio."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(make())


def _load_specs(names: Sequence[str], config: Path | None) -> tuple[dict[str, Any], Any]:
    from arena.config import Settings
    from arena.providers.registry import RegistryError, load_registry

    settings = Settings()
    path = config or settings.resolved_config_path()
    if path is None:
        raise _fail("a model registry is needed: pass --config arena.yaml")
    try:
        registry = load_registry(path)
    except RegistryError as e:
        raise _fail(str(e)) from None
    specs = {s.name: s for s in registry.models}
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise _fail(
            f"model(s) not in {path}: {', '.join(unknown)}; it has {', '.join(sorted(specs))}"
        )
    return specs, settings


def _providers(names: Sequence[str], config: Path | None) -> Any:
    """Providers for the named models from the model registry file, OpenAI-compatible ones
    on one shared HTTP client; close them with ``await providers.aclose()``."""
    from arena.judge.clients import build_provider_set

    specs, settings = _load_specs(names, config)
    return build_provider_set(specs, list(names), settings)


def _judge_providers(names: Sequence[str], config: Path | None, clients: int) -> Any:
    """Judge providers on shared HTTP clients: one by default (``clients`` 0 or 1), or the
    judge's calls spread over ``clients`` shared clients."""
    from arena.judge.clients import build_provider_set

    specs, settings = _load_specs(names, config)
    return build_provider_set(specs, list(names), settings, clients=max(1, clients))


def _parse_pairs(values: Sequence[str], what: str) -> dict[str, float]:
    out = {}
    for value in values:
        key, sep, number = value.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(number)
        except ValueError:
            raise _fail(f"{what} must look like NAME=NUMBER, got {value!r}") from None
    return out


def _load_mapping(path: Path) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise _fail(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict):
        raise _fail(f"{path} must hold a mapping")
    return doc


# ---------------------------------------------------------------- answer


@judge_app.command("answer")
def answer_command(
    questions: str = typer.Option(..., "--questions", "-q", help="Question JSONL (path or URL)."),
    models: list[str] = typer.Option(..., "--model", "-m", help="Model name (repeatable)."),
    out: Path = typer.Option(..., "--out", "-o", help="Answer JSONL to append to."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Model registry YAML."),
    concurrency: int = typer.Option(8, min=1, help="Conversations in flight."),
    max_tokens: int = typer.Option(1024, min=1, help="Token limit per answer turn."),
    temperature: list[str] = typer.Option(
        [], "--temperature", help="Override a category's temperature: CATEGORY=T (repeatable)."
    ),
    temperature_table: Path | None = typer.Option(
        None, help="YAML/JSON mapping category -> temperature (replaces the default table)."
    ),
    default_temperature: float | None = typer.Option(
        None, help="Temperature for categories not in the table (default 0.7)."
    ),
    timeout: float = typer.Option(600.0, help="Seconds per model call before it is retried."),
    retries: int = typer.Option(4, min=1, help="Attempts per model call."),
    limit: int | None = typer.Option(None, help="Only the first N questions."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Generate answers with each model (multi-turn, resumable, MT-Bench answer layout).

    Default temperatures by category (MT-Bench): writing/roleplay 0.7; extraction, math,
    coding, reasoning 0.0; stem, humanities 0.1; others 0.7.
    """
    from arena.errors import ArenaError
    from arena.judge.answering import TemperatureTable, generate_answers
    from arena.judge.benchmark_files import load_questions
    from arena.judge.calls import RetryPolicy

    try:
        qs = load_questions(questions)
    except ArenaError as e:
        raise _fail(e.message) from None
    if limit is not None:
        qs = qs[:limit]
    table = TemperatureTable()
    if temperature_table is not None:
        mapping = _load_mapping(temperature_table)
        table = TemperatureTable({str(k): float(v) for k, v in mapping.items()}, table.default)
    table = table.with_overrides(_parse_pairs(temperature, "--temperature"), default_temperature)
    providers = _providers(models, config)
    policy = RetryPolicy(attempts=retries, timeout_s=timeout)

    async def main():
        try:
            return await generate_answers(
                providers.providers,
                qs,
                out,
                concurrency=concurrency,
                temperatures=table,
                max_tokens=max_tokens,
                policy=policy,
                show_progress=progress,
            )
        finally:
            await providers.aclose()

    summary = _run(main)
    typer.echo(
        f"wrote {summary.written} answers to {out}; {summary.skipped} already there; "
        f"{summary.failed} failed"
    )
    for failure in summary.failures[:20]:
        typer.echo(f"  failed: {failure}", err=True)
    if summary.failed:
        typer.echo("rerun the same command to retry the failed ones", err=True)
        raise typer.Exit(code=1)


# ---------------------------------------------------------------- grade


@judge_app.command("grade")
def grade_command(
    mode: str = typer.Option(
        "single", help="single | pairwise-baseline | pairwise-all | arena-hard"
    ),
    questions: str = typer.Option(..., "--questions", "-q", help="Question JSONL (path or URL)."),
    answers: list[str] = typer.Option(
        ..., "--answers", "-a", help="Answer JSONL file, directory or URL (repeatable)."
    ),
    judge_prompts: str = typer.Option(..., help="Judge-prompt JSONL (path or URL)."),
    judges: list[str] = typer.Option(..., "--judge", "-j", help="Judge model (repeatable)."),
    out: Path = typer.Option(..., "--out", "-o", help="Judgment JSONL to append to."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Model registry YAML."),
    models: list[str] = typer.Option(
        [], "--model", "-m", help="Models to grade (default: every model with answers)."
    ),
    baseline: str | None = typer.Option(
        None, help="Baseline model (pairwise-baseline, arena-hard)."
    ),
    reference: str | None = typer.Option(None, help="Reference-answer JSONL (path or URL)."),
    reference_category: list[str] = typer.Option(
        [], help="Categories graded against the reference (default: math, reasoning, coding)."
    ),
    prompt: list[str] = typer.Option([], "--prompt", help="Use only these judge prompts (names)."),
    spread: str = typer.Option(
        "round-robin", help="round-robin (share the work) or each (every judge, one file each)."
    ),
    concurrency: int = typer.Option(16, min=1, help="Judge calls in flight."),
    judge_clients: int = typer.Option(
        1,
        min=0,
        help="Shared HTTP clients the judge calls are spread over (0 or 1: one, the fast "
        "default; more only splits the connection pool).",
    ),
    parse_retries: int = typer.Option(2, min=0, help="New samples when a verdict is unparsable."),
    retries: int = typer.Option(4, min=1, help="Attempts per judge call (errors, timeouts)."),
    timeout: float = typer.Option(120.0, help="Seconds per judge call before it is retried."),
    backoff: float = typer.Option(1.0, help="First retry delay in seconds (doubles each time)."),
    max_tokens: int = typer.Option(2048, min=1, help="Judge answer token limit."),
    judge_temperature: float = typer.Option(0.0, help="Judge sampling temperature."),
    cache: Path | None = typer.Option(
        None, help="Judge-call cache (SQLite); default: <out>.cache.sqlite next to the output."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not cache judge calls."),
    limit: int | None = typer.Option(None, help="Only the first N questions."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Grade answers with judge models; resumable; failures are recorded, never fatal.

    The judge prompt for each judgment is picked from --judge-prompts by its shape: single
    or pairwise, one or two turns, with or without a reference answer, and the verdict its
    output_format asks for ([[rating]], [[A]] or, for arena-hard, [[A>>B]]).
    """
    from arena.errors import ArenaError
    from arena.judge.benchmark_files import (
        attach_references,
        load_answers,
        load_judge_prompts,
        load_questions,
        load_references,
    )
    from arena.judge.cache import JudgeCache
    from arena.judge.calls import JudgeCaller, RetryPolicy
    from arena.judge.grading import (
        DEFAULT_REFERENCE_CATEGORIES,
        Grader,
        Mode,
        Spread,
        grade,
        plan_tasks,
    )
    from arena.judge.prompts import PromptBook

    try:
        grade_mode = Mode(mode)
        spread_mode = Spread(spread)
    except ValueError as e:
        raise _fail(str(e)) from None
    try:
        qs = load_questions(questions)
        if reference:
            qs = attach_references(qs, load_references(reference))
        if limit is not None:
            qs = qs[:limit]
        all_answers = load_answers(answers)
        book = PromptBook(load_judge_prompts(judge_prompts), prompt)
        chosen = list(models) or sorted(all_answers)
        tasks, missing = plan_tasks(grade_mode, qs, all_answers, chosen, baseline=baseline)
        grader = Grader(
            grade_mode,
            book,
            all_answers,
            reference_categories=frozenset(reference_category) or DEFAULT_REFERENCE_CATEGORIES,
            parse_retries=parse_retries,
        )
        grader.check_prompts(tasks)
    except ArenaError as e:
        raise _fail(e.message) from None
    providers = _judge_providers(judges, config, judge_clients)
    store = None if no_cache else JudgeCache(cache or out.with_name(out.name + ".cache.sqlite"))
    policy = RetryPolicy(attempts=retries, initial_backoff_s=backoff, timeout_s=timeout)
    params = {"temperature": judge_temperature, "max_tokens": max_tokens}
    callers = [
        JudgeCaller(name, providers[name], params=params, cache=store, policy=policy)
        for name in dict.fromkeys(judges)
    ]

    async def main():
        try:
            return await grade(
                grader,
                tasks,
                callers,
                out,
                spread=spread_mode,
                concurrency=concurrency,
                missing_answers=missing,
                show_progress=progress,
            )
        finally:
            await providers.aclose()
            if store is not None:
                store.close()

    summary = _run(main)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items())) or "none"
    typer.echo(
        f"judged {summary.judged} tasks ({summary.skipped} already done, "
        f"{summary.missing_answers} lacked answers); verdicts: {statuses}"
    )
    typer.echo("written to " + ", ".join(summary.outputs))


# ---------------------------------------------------------------- show


@judge_app.command("show")
def show_command(
    judgments: list[str] = typer.Option(
        ..., "--judgments", "-i", help="Judgment or battle JSONL, directory or URL (repeatable)."
    ),
    baseline: str | None = typer.Option(
        None, help="Baseline (default: the model in every battle)."
    ),
    answers: list[str] = typer.Option(
        [], "--answers", "-a", help="Answer files, for style control of Arena-Hard scores."
    ),
    plot: Path | None = typer.Option(None, help="Write the MT-Bench radar plot (PNG) here."),
    questions: str | None = typer.Option(
        None, "--questions", "-q", help="Question JSONL, for categories missing from judgments."
    ),
    prices: Path | None = typer.Option(
        None, help="YAML/JSON price table: {judge: {input: $/1M tokens, output: $/1M tokens}}."
    ),
    rounds: int = typer.Option(100, min=2, help="Bootstrap rounds for intervals."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the scores as JSON."),
) -> None:
    """Scores: MT-Bench per turn/category/overall, pairwise win rates, Arena-Hard win rate
    against the baseline (with and without style control), tokens and cost per judge."""
    from arena.errors import ArenaError
    from arena.judge.report import build_report, print_report

    try:
        report = build_report(
            judgments,
            baseline=baseline,
            answers=answers,
            plot=plot,
            prices=_load_mapping(prices) if prices else None,
            rounds=rounds,
            seed=seed,
            questions=questions,
        )
    except ArenaError as e:
        raise _fail(e.message) from None
    print_report(report)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.as_json(), indent=2), encoding="utf-8")


# ---------------------------------------------------------------- agreement


@judge_app.command("agreement")
def agreement_command(
    judgments: list[str] = typer.Option(
        [], "--judgments", "-i", help="Pairwise judgment JSONL of two or more judges."
    ),
    battles: str | None = typer.Option(
        None, help="Clean-battle JSONL (conversation_a/b) to judge and compare with human votes."
    ),
    judge: str | None = typer.Option(None, "--judge", "-j", help="Judge model for --battles."),
    judge_prompts: str | None = typer.Option(None, help="Judge-prompt JSONL for --battles."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Model registry YAML."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Judgments of the battles (JSONL)."),
    prompt: list[str] = typer.Option([], "--prompt", help="Use only these judge prompts (names)."),
    concurrency: int = typer.Option(16, min=1),
    parse_retries: int = typer.Option(2, min=0),
    retries: int = typer.Option(4, min=1),
    timeout: float = typer.Option(120.0),
    progress: bool = typer.Option(True),
) -> None:
    """Agreement with and without ties: between judges, or a judge and human votes."""
    from arena.errors import ArenaError
    from arena.judge.agreement import agreement, judge_votes
    from arena.judge.judgments import load_judgments

    if battles is None:
        if not judgments:
            raise _fail("pass --judgments (two judges) or --battles with --judge")
        try:
            votes = judge_votes(load_judgments(judgments).pair)
        except ArenaError as e:
            raise _fail(e.message) from None
        names = sorted(votes)
        if len(names) < 2:
            raise _fail(f"need pairwise judgments of two judges; found {names or 'none'}")
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                _echo_agreement(first, second, agreement(votes[first], votes[second]))
        return
    if not (judge and judge_prompts and out):
        raise _fail("--battles needs --judge, --judge-prompts and --out")
    result = _judge_battles(
        battles,
        judge=judge,
        judge_prompts=judge_prompts,
        config=config,
        out=out,
        prompt=prompt,
        concurrency=concurrency,
        parse_retries=parse_retries,
        retries=retries,
        timeout=timeout,
        progress=progress,
    )
    typer.echo(
        f"judged {result['judged']} battles; skipped "
        + ", ".join(f"{k} {v}" for k, v in result["skipped"].items())
    )
    _echo_agreement(judge, "human votes", result["agreement"])


def _echo_agreement(first: str, second: str, a: Any) -> None:
    typer.echo(
        f"{first} vs {second}: with ties {a.with_tie:.1%} ({a.agree_with_tie}/{a.n_with_tie}), "
        f"without ties {a.without_tie:.1%} ({a.agree_without_tie}/{a.n_without_tie})"
    )


def _judge_battles(
    battles_path: str,
    *,
    judge: str,
    judge_prompts: str,
    config: Path | None,
    out: Path,
    prompt: Sequence[str],
    concurrency: int,
    parse_retries: int,
    retries: int,
    timeout: float,
    progress: bool,
) -> dict[str, Any]:
    from arena.errors import ArenaError
    from arena.judge.agreement import agreement, battles_as_benchmark, human_votes, judge_votes
    from arena.judge.benchmark_files import load_judge_prompts
    from arena.judge.cache import JudgeCache
    from arena.judge.calls import JudgeCaller, RetryPolicy
    from arena.judge.grading import Grader, Mode, grade
    from arena.judge.prompts import PromptBook
    from arena.judge.sources import read_jsonl, read_jsonl_if_exists

    try:
        bench = battles_as_benchmark(read_jsonl(battles_path))
        book = PromptBook(load_judge_prompts(judge_prompts), prompt)
        grader = Grader(Mode.PAIRWISE_ALL, book, bench.answers, parse_retries=parse_retries)
        grader.check_prompts(bench.tasks)
    except ArenaError as e:
        raise _fail(e.message) from None
    providers = _judge_providers([judge], config, 1)
    store = JudgeCache(out.with_name(out.name + ".cache.sqlite"))
    caller = JudgeCaller(
        judge,
        providers[judge],
        params={"temperature": 0.0, "max_tokens": 2048},
        cache=store,
        policy=RetryPolicy(attempts=retries, timeout_s=timeout),
    )

    async def main():
        try:
            return await grade(
                grader, bench.tasks, [caller], out, concurrency=concurrency, show_progress=progress
            )
        finally:
            await providers.aclose()
            store.close()

    summary = _run(main)
    rows = [r for r in read_jsonl_if_exists(out) if "g1_winner" in r]
    votes = judge_votes(rows).get(judge, {})
    result = agreement(votes, human_votes(bench.battles, bench.keys))
    return {"judged": summary.judged, "skipped": bench.skipped, "agreement": result}
