"""CLI commands of arena.judge: ``arena judge run | answer | grade | show | agreement``.

The work itself is in ``steps`` (answer, grade, show) and ``run_command`` (all three in a
row). Heavy imports stay inside the command bodies so ``arena --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from arena.judge.cli_support import (
    REGISTRY_HELP,
    build_providers,
    fail,
    load_mapping,
    parse_pairs,
    run_async,
)
from arena.judge.run_command import run_command

judge_app = typer.Typer(
    name="judge",
    help="LLM-as-a-judge: MT-Bench and Arena-Hard style automatic evaluation. "
    "Start with 'arena judge run' (walkthrough: docs/judge.md).",
    no_args_is_help=True,
)
judge_app.command("run")(run_command)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(judge_app, name="judge")


# ---------------------------------------------------------------- answer


@judge_app.command("answer")
def answer_command(
    questions: str = typer.Option(..., "--questions", "-q", help="Question JSONL (path or URL)."),
    models: list[str] = typer.Option(..., "--model", "-m", help="Model name (repeatable)."),
    out: Path = typer.Option(..., "--out", "-o", help="Answer JSONL to append to."),
    config: Path | None = typer.Option(None, "--config", "-c", help=REGISTRY_HELP),
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
    from arena.judge.answering import TemperatureTable
    from arena.judge.steps import ANSWER_RETRY_HINT, answer_step

    table = TemperatureTable()
    if temperature_table is not None:
        mapping = load_mapping(temperature_table)
        try:
            by_category = {str(k): float(v) for k, v in mapping.items()}
        except (TypeError, ValueError):
            raise fail(f"{temperature_table} must map categories to numbers") from None
        table = TemperatureTable(by_category, table.default)
    table = table.with_overrides(parse_pairs(temperature, "--temperature"), default_temperature)
    summary = answer_step(
        questions,
        models,
        out,
        config=config,
        concurrency=concurrency,
        max_tokens=max_tokens,
        temperatures=table,
        timeout=timeout,
        retries=retries,
        limit=limit,
        progress=progress,
    )
    if summary.failed:
        typer.echo(ANSWER_RETRY_HINT, err=True)
        raise typer.Exit(code=1)


# ---------------------------------------------------------------- grade


@judge_app.command("grade")
def grade_command(
    mode: str = typer.Option(
        "single", help="single | pairwise-baseline | pairwise-all | arena-hard | redteam"
    ),
    questions: str = typer.Option(..., "--questions", "-q", help="Question JSONL (path or URL)."),
    answers: list[str] = typer.Option(
        ..., "--answers", "-a", help="Answer JSONL file, directory or URL (repeatable)."
    ),
    judge_prompts: str | None = typer.Option(
        None, help="Judge-prompt JSONL (path or URL); default: the prompts Arena ships."
    ),
    judges: list[str] = typer.Option(
        [],
        "--judge",
        "-j",
        help="Judge model (repeatable; required, except for redteam without judge goals).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Judgment JSONL to append to."),
    config: Path | None = typer.Option(None, "--config", "-c", help=REGISTRY_HELP),
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

    The judge prompt for each judgment is picked from --judge-prompts (default: the prompts
    that ship with Arena) by its shape: single or pairwise, one or two turns, with or without
    a reference answer, and the verdict its output_format asks for ([[rating]], [[A]] or, for
    arena-hard, [[A>>B]]).

    --mode redteam replays a red-team evaluation set: phrase and secret challenges are
    decided by the game's detectors, judge goals by the judge.
    """
    from arena.judge.steps import grade_step

    grade_step(
        mode,
        questions,
        answers,
        judges,
        out,
        judge_prompts=judge_prompts,
        config=config,
        models=models,
        baseline=baseline,
        reference=reference,
        reference_categories=reference_category,
        prompt_names=prompt,
        spread=spread,
        concurrency=concurrency,
        judge_clients=judge_clients,
        parse_retries=parse_retries,
        retries=retries,
        timeout=timeout,
        backoff=backoff,
        max_tokens=max_tokens,
        judge_temperature=judge_temperature,
        cache=cache,
        no_cache=no_cache,
        limit=limit,
        progress=progress,
    )


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
    against the baseline (with and without style control), red-team resist rates, tokens and
    cost per judge."""
    from arena.judge.steps import show_step

    show_step(
        judgments,
        baseline=baseline,
        answers=answers,
        plot=plot,
        questions=questions,
        prices=load_mapping(prices) if prices else None,
        rounds=rounds,
        seed=seed,
        json_out=json_out,
    )


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
    judge_prompts: str | None = typer.Option(
        None, help="Judge-prompt JSONL for --battles (default: the prompts Arena ships)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help=REGISTRY_HELP),
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
            raise fail(
                "pass --judgments FILE... (pairwise judgments of two or more judges), or "
                "--battles FILE with --judge MODEL and --out FILE"
            )
        try:
            votes = judge_votes(load_judgments(judgments).pair)
        except ArenaError as e:
            raise fail(e.message) from None
        names = sorted(votes)
        if len(names) < 2:
            raise fail(
                f"need pairwise judgments of two judges; found {names or 'none'}: grade the "
                "same answers with a second judge (arena judge grade --mode pairwise-all)"
            )
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                _echo_agreement(first, second, agreement(votes[first], votes[second]))
        return
    if not (judge and out):
        raise fail("--battles needs --judge MODEL and --out FILE (the judgments are written there)")
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
    judge_prompts: str | None,
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
    from arena.judge.cache import JudgeCache
    from arena.judge.calls import JudgeCaller, RetryPolicy
    from arena.judge.grading import Grader, Mode, grade
    from arena.judge.prompts import PromptBook, load_prompt_file
    from arena.judge.sources import read_jsonl, read_jsonl_if_exists

    try:
        bench = battles_as_benchmark(read_jsonl(battles_path))
        prompts, source = load_prompt_file(judge_prompts)
        book = PromptBook(prompts, prompt, source=source)
        grader = Grader(Mode.PAIRWISE_ALL, book, bench.answers, parse_retries=parse_retries)
        grader.check_prompts(bench.tasks)
    except ArenaError as e:
        raise fail(e.message) from None
    providers = build_providers([judge], config)
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

    summary = run_async(main)
    rows = [r for r in read_jsonl_if_exists(out) if "g1_winner" in r]
    votes = judge_votes(rows).get(judge, {})
    result = agreement(votes, human_votes(bench.battles, bench.keys))
    return {"judged": summary.judged, "skipped": bench.skipped, "agreement": result}
