"""The three steps of a judge run (answer, grade, show) as plain functions.

``arena judge answer | grade | show`` each run one of them with the user's options, and
``arena judge run`` runs all three in a row, so both go through the same code. Each step
prints its own summary; a bad input ends the command with a message saying what is wrong
and what to do (``cli_support.fail``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from arena.judge.cli_support import build_providers, fail, run_async

ANSWER_RETRY_HINT = (
    "rerun the same command to retry the failed ones (answers already written are kept)"
)
QUESTIONS_HINT = (
    "--questions takes a question JSONL path or URL, e.g. MT-Bench's question.jsonl "
    "(see docs/judge.md)"
)


def read_questions(location: str) -> list[Any]:
    """The questions of ``location``, or an exit that says what is wrong with the file."""
    from arena.errors import ArenaError
    from arena.judge.benchmark_files import load_questions

    try:
        return load_questions(location)
    except ArenaError as e:
        raise fail(f"{e.message}\n{QUESTIONS_HINT}") from None


def answer_step(
    questions: str,
    models: Sequence[str],
    out: Path,
    *,
    config: Path | None = None,
    concurrency: int = 8,
    max_tokens: int = 1024,
    temperatures: Any = None,
    timeout: float = 600.0,
    retries: int = 4,
    limit: int | None = None,
    progress: bool = True,
) -> Any:
    """Every model answers every question into ``out``; returns the ``AnswerSummary``."""
    from arena.judge.answering import generate_answers
    from arena.judge.calls import RetryPolicy

    qs = read_questions(questions)
    if limit is not None:
        qs = qs[:limit]
    providers = build_providers(models, config)
    policy = RetryPolicy(attempts=retries, timeout_s=timeout)

    async def main():
        try:
            return await generate_answers(
                providers.providers,
                qs,
                out,
                concurrency=concurrency,
                temperatures=temperatures,
                max_tokens=max_tokens,
                policy=policy,
                show_progress=progress,
            )
        finally:
            await providers.aclose()

    summary = run_async(main)
    typer.echo(
        f"wrote {summary.written} answers to {out}; {summary.skipped} already there; "
        f"{summary.failed} failed"
    )
    for failure in summary.failures[:20]:
        typer.echo(f"  failed: {failure}", err=True)
    return summary


def grade_step(
    mode: str,
    questions: str,
    answers: Sequence[str],
    judges: Sequence[str],
    out: Path,
    *,
    judge_prompts: str | None = None,
    config: Path | None = None,
    models: Sequence[str] = (),
    baseline: str | None = None,
    reference: str | None = None,
    reference_categories: Sequence[str] = (),
    prompt_names: Sequence[str] = (),
    spread: str = "round-robin",
    concurrency: int = 16,
    judge_clients: int = 1,
    parse_retries: int = 2,
    retries: int = 4,
    timeout: float = 120.0,
    backoff: float = 1.0,
    max_tokens: int = 2048,
    judge_temperature: float = 0.0,
    cache: Path | None = None,
    no_cache: bool = False,
    limit: int | None = None,
    progress: bool = True,
) -> Any:
    """Judge the answers in ``mode`` into ``out``; returns the ``GradeSummary``.

    ``judge_prompts`` None: the prompts that ship with Arena.
    """
    if mode == "redteam":
        return replay_step(
            questions, answers, judges, out, config=config, models=models,
            concurrency=concurrency, judge_clients=judge_clients, parse_retries=parse_retries,
            retries=retries, timeout=timeout, backoff=backoff, max_tokens=max_tokens,
            judge_temperature=judge_temperature, cache=cache, no_cache=no_cache, limit=limit,
            progress=progress,
        )  # fmt: skip
    from arena.errors import ArenaError
    from arena.judge.benchmark_files import attach_references, load_answers, load_references
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
    from arena.judge.prompts import PromptBook, load_prompt_file

    try:
        grade_mode = Mode(mode)
    except ValueError:
        choices = ", ".join([*(m.value for m in Mode), "redteam"])
        raise fail(f"unknown mode {mode!r}; choose one of {choices}") from None
    if not judges:
        raise fail(f"--mode {mode} needs a judge: pass --judge MODEL")
    try:
        spread_mode = Spread(spread)
    except ValueError:
        choices = ", ".join(s.value for s in Spread)
        raise fail(f"unknown spread {spread!r}; choose one of {choices}") from None
    qs = read_questions(questions)
    try:
        if reference:
            qs = attach_references(qs, load_references(reference))
        if limit is not None:
            qs = qs[:limit]
        all_answers = load_answers(answers)
        if not all_answers:
            raise fail(
                f"no answers in {', '.join(map(str, answers))}; "
                "write some first with arena judge answer"
            )
        prompts, source = load_prompt_file(judge_prompts)
        book = PromptBook(prompts, prompt_names, source=source)
        chosen = list(models) or sorted(all_answers)
        tasks, missing = plan_tasks(grade_mode, qs, all_answers, chosen, baseline=baseline)
        grader = Grader(
            grade_mode,
            book,
            all_answers,
            reference_categories=frozenset(reference_categories) or DEFAULT_REFERENCE_CATEGORIES,
            parse_retries=parse_retries,
        )
        grader.check_prompts(tasks)
    except ArenaError as e:
        raise fail(e.message) from None
    providers = build_providers(judges, config, clients=judge_clients)
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

    summary = run_async(main)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items())) or "none"
    typer.echo(
        f"judged {summary.judged} tasks ({summary.skipped} already done, "
        f"{summary.missing_answers} lacked answers); verdicts: {statuses}"
    )
    typer.echo("written to " + ", ".join(summary.outputs))
    _explain_bad_verdicts(summary.statuses, summary.outputs)
    return summary


def replay_step(
    questions: str,
    answers: Sequence[str],
    judges: Sequence[str],
    out: Path,
    *,
    config: Path | None = None,
    models: Sequence[str] = (),
    concurrency: int = 16,
    judge_clients: int = 1,
    parse_retries: int = 2,
    retries: int = 4,
    timeout: float = 120.0,
    backoff: float = 1.0,
    max_tokens: int = 2048,
    judge_temperature: float = 0.0,
    cache: Path | None = None,
    no_cache: bool = False,
    limit: int | None = None,
    progress: bool = True,
) -> Any:
    """Replay red-team attacks (``--mode redteam``): did each model's answers let the attack
    succeed? Detectors decide phrases and secrets; the judge is needed for judge goals only."""
    from arena.errors import ArenaError
    from arena.judge.benchmark_files import load_answers
    from arena.judge.cache import JudgeCache
    from arena.judge.calls import JudgeCaller, RetryPolicy
    from arena.judge.redteam_grading import grade_replays, plan_replays

    qs = read_questions(questions)[:limit]
    try:
        all_answers = load_answers(answers)
        if not all_answers:
            raise fail(
                f"no answers in {', '.join(map(str, answers))}; write some first with "
                "arena judge answer -q THE_EVAL_SET"
            )
        tasks, missing = plan_replays(qs, all_answers, list(models) or sorted(all_answers))
    except ArenaError as e:
        raise fail(e.message) from None
    goals = sorted({str(t.question.question_id) for t in tasks if t.case.kind == "judge_goal"})
    if goals and not judges:
        shown = ", ".join(goals[:5]) + (", ..." if len(goals) > 5 else "")
        raise fail(
            f"{len(goals)} red-team case(s) are judge goals ({shown}), decided by a judge "
            "model: pass --judge MODEL"
        )
    judges = list(dict.fromkeys(judges)) if goals else []
    providers = build_providers(judges, config, clients=judge_clients) if judges else None
    store = None
    if judges and not no_cache:
        store = JudgeCache(cache or out.with_name(out.name + ".cache.sqlite"))
    policy = RetryPolicy(attempts=retries, initial_backoff_s=backoff, timeout_s=timeout)
    params = {"temperature": judge_temperature, "max_tokens": max_tokens}
    callers = [
        JudgeCaller(n, providers[n], params=params, cache=store, policy=policy) for n in judges
    ]

    async def main():
        try:
            return await grade_replays(
                tasks, all_answers, callers, out, concurrency=concurrency,
                parse_retries=parse_retries, missing_answers=missing, show_progress=progress,
            )  # fmt: skip
        finally:
            if providers is not None:
                await providers.aclose()
            if store is not None:
                store.close()

    summary = run_async(main)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary.statuses.items())) or "none"
    typer.echo(
        f"replayed {summary.judged} attacks ({summary.skipped} already done, "
        f"{summary.missing_answers} lacked answers); verdicts: {statuses}"
    )
    typer.echo("written to " + ", ".join(summary.outputs) + "; see arena judge show -i FILE")
    _explain_bad_verdicts(summary.statuses, summary.outputs)
    return summary


def _explain_bad_verdicts(statuses: Mapping[str, int], outputs: Sequence[str]) -> None:
    """Say what a run with failed or unparsable verdicts means and what to do about it."""
    bad = {k: v for k, v in statuses.items() if k != "ok" and v}
    if not bad:
        return
    files = ", ".join(outputs)
    if bad.get("unparsable"):
        typer.echo(
            f"{bad['unparsable']} verdicts were unparsable: the judge did not end its answer "
            "in the verdict format the prompt asks for ([[rating]], [[A]]/[[B]]/[[C]] or "
            f"[[A>>B]]...). Read the 'judgment' fields in {files}; a stronger judge model, or "
            "a larger --max-tokens if answers were cut off, usually helps. They are left out "
            "of the scores.",
            err=True,
        )
    if bad.get("error"):
        typer.echo(
            f"{bad['error']} judge calls failed (see the 'error' fields in {files}); rerun "
            "the same command to judge just those again. First errors:",
            err=True,
        )
        for error in _first_errors(outputs):
            typer.echo(f"  {error}", err=True)


def _first_errors(outputs: Sequence[str], limit: int = 3) -> list[str]:
    """Distinct error messages of failed judgments in ``outputs`` (the real reasons)."""
    from arena.judge.grading import row_failed
    from arena.judge.sources import read_jsonl_if_exists

    errors: dict[str, None] = {}
    for path in outputs:
        for row in read_jsonl_if_exists(path):
            if row_failed(row):
                games = row.get("games") or [row]
                for game in games:
                    if game.get("error"):
                        errors[str(game["error"])] = None
    return list(errors)[:limit]


def show_step(
    judgments: Sequence[str],
    *,
    baseline: str | None = None,
    answers: Sequence[str] = (),
    plot: Path | None = None,
    questions: str | None = None,
    prices: Mapping[str, Any] | None = None,
    rounds: int = 100,
    seed: int = 0,
    json_out: Path | None = None,
) -> Any:
    """Compute, print (and with ``json_out``, save) the report; returns it."""
    from arena.errors import ArenaError
    from arena.judge.report import build_report, print_report

    try:
        report = build_report(
            judgments,
            baseline=baseline,
            answers=answers,
            plot=plot,
            prices=prices,
            rounds=rounds,
            seed=seed,
            questions=questions,
        )
    except ArenaError as e:
        raise fail(e.message) from None
    print_report(report)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.as_json(), indent=2), encoding="utf-8")
    return report
