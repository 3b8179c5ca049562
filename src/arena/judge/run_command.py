"""``arena judge run``: from questions to answers to judgments to a report, in one command.

It runs the same steps as ``arena judge answer``, ``grade`` and ``show`` (``steps``), with
their files in one folder, so a run can be resumed, inspected, or continued by hand with the
individual commands. MT-Bench runs grade each answer alone (``single``) and/or in pairs;
Arena-Hard runs compare every model with a baseline on five verdict levels.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from arena.judge.cli_support import REGISTRY_HELP, fail, load_registry_specs, load_specs


class Bench(StrEnum):
    MT_BENCH = "mt-bench"
    ARENA_HARD = "arena-hard"


MT_BENCH_MODES = ("single", "pairwise-all", "pairwise-baseline")
ANSWERS_FILE = "answers.jsonl"
REPORT_FILE = "report.json"
PLOT_FILE = "mt-bench-radar.png"


def judgments_file(mode: str) -> str:
    return f"judgments-{mode}.jsonl"


def split_names(values: list[str]) -> list[str]:
    """Model names from ``--models A B``, ``--models A,B`` and repeated ``--models``."""
    names = [part.strip() for value in values for part in value.split(",")]
    return list(dict.fromkeys(n for n in names if n))


def run_command(
    models_opt: list[str] = typer.Option(
        [], "--models", "--model", "-m", help="Models to evaluate: --models A B (or A,B)."
    ),
    more_models: list[str] | None = typer.Argument(
        None, metavar="MODEL", help="More models to evaluate (so '--models A B' works)."
    ),
    bench: Bench = typer.Option(..., "--bench", "-b", help="mt-bench or arena-hard."),
    questions: str = typer.Option(..., "--questions", "-q", help="Question JSONL (path or URL)."),
    judges: list[str] = typer.Option(..., "--judge", "-j", help="Judge model (repeatable)."),
    baseline: str | None = typer.Option(
        None, help="The model every other one is compared with (arena-hard, pairwise-baseline)."
    ),
    modes: list[str] = typer.Option(
        [],
        "--mode",
        help="mt-bench only: single (default), pairwise-all, pairwise-baseline (repeatable).",
    ),
    out_dir: Path | None = typer.Option(
        None, "--out", "-o", help="Folder for all files of the run (default: arena-judge/BENCH)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help=REGISTRY_HELP),
    judge_prompts: str | None = typer.Option(
        None, help="Judge-prompt JSONL (default: the prompts Arena ships)."
    ),
    reference: str | None = typer.Option(
        None, help="Reference-answer JSONL (math, reasoning and coding are graded against it)."
    ),
    limit: int | None = typer.Option(None, min=1, help="Only the first N questions."),
    max_tokens: int = typer.Option(1024, min=1, help="Token limit per answer turn."),
    judge_max_tokens: int = typer.Option(2048, min=1, help="Token limit per judge answer."),
    concurrency: int = typer.Option(8, min=1, help="Conversations in flight while answering."),
    judge_concurrency: int = typer.Option(16, min=1, help="Judge calls in flight."),
    rounds: int = typer.Option(100, min=2, help="Bootstrap rounds for intervals."),
    plot: bool = typer.Option(False, help=f"Also draw the MT-Bench radar plot ({PLOT_FILE})."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Answer, grade and report in one go; rerun the same command to resume.

    Writes, in the --out folder: answers.jsonl (every model's answers), judgments-MODE.jsonl
    (one file per grading mode), their judge-call caches (*.cache.sqlite) and report.json
    (the scores printed at the end). Without --config, the models come from ./arena.yaml or
    else the default models that 'arena serve' uses (the offline demo models included).
    Walkthrough: docs/judge.md.
    """
    from arena.judge.steps import grade_step, show_step

    models = split_names([*models_opt, *(more_models or [])])
    if not models:
        specs, _, _ = load_registry_specs(config)
        raise fail(
            "name the models to evaluate: --models A B (this registry has "
            f"{', '.join(sorted(specs)) or 'no models'})"
        )
    run_modes = _modes(bench, modes, baseline, models)
    load_specs([*models, *([baseline] if baseline else []), *judges], config)
    _check_prompt_file(judge_prompts, run_modes)

    folder = out_dir or Path("arena-judge") / bench.value
    answers = folder / ANSWERS_FILE
    needs_baseline = {"pairwise-baseline", "arena-hard"} & set(run_modes)
    answered = list(dict.fromkeys([*models, *([baseline] if baseline and needs_baseline else [])]))
    _answer(questions, answered, answers, config, limit, max_tokens, concurrency, progress)

    outputs: list[Path] = []
    failed_calls = 0
    for mode in run_modes:
        out = folder / judgments_file(mode)
        summary = grade_step(
            mode,
            questions,
            [str(answers)],
            judges,
            out,
            judge_prompts=judge_prompts,
            config=config,
            models=models,
            baseline=baseline,
            reference=reference,
            concurrency=judge_concurrency,
            max_tokens=judge_max_tokens,
            limit=limit,
            progress=progress,
        )
        outputs.extend(Path(p) for p in summary.outputs)
        failed_calls += summary.statuses.get("error", 0)
    show_step(
        [str(p) for p in outputs],
        baseline=baseline,
        answers=[str(answers)] if bench is Bench.ARENA_HARD else [],
        plot=folder / PLOT_FILE if plot else None,
        questions=questions,
        rounds=rounds,
        json_out=folder / REPORT_FILE,
    )
    names = ", ".join([ANSWERS_FILE, *(p.name for p in outputs), REPORT_FILE])
    typer.echo(f"files of this run are in {folder}/: {names}")
    show = [*(f"-i {p}" for p in outputs), f"-q {questions}"]
    if baseline:
        show.append(f"--baseline {baseline}")
    if bench is Bench.ARENA_HARD:
        show.append(f"-a {answers}")
    typer.echo("show the report again with: arena judge show " + " ".join(show))
    if failed_calls:
        typer.echo(
            f"{failed_calls} judge calls failed, so the report lacks their verdicts; rerun the "
            "same command to judge just those again.",
            err=True,
        )
        raise typer.Exit(code=1)


def _modes(bench: Bench, modes: list[str], baseline: str | None, models: list[str]) -> list[str]:
    """The grading modes of this run, or a message saying which option is missing."""
    if bench is Bench.ARENA_HARD:
        if any(m != "arena-hard" for m in modes):
            raise fail("--mode is for --bench mt-bench; arena-hard runs always grade vs a baseline")
        if not baseline:
            raise fail(
                "--bench arena-hard compares every model with a baseline model: pass "
                "--baseline MODEL (a registry model; it is answered too)"
            )
        if not [m for m in models if m != baseline]:
            raise fail("name at least one model besides the baseline: --models A B --baseline C")
        return ["arena-hard"]
    chosen = list(dict.fromkeys(modes)) or ["single"]
    unknown = [m for m in chosen if m not in MT_BENCH_MODES]
    if unknown:
        raise fail(
            f"unknown --mode {', '.join(unknown)}; for mt-bench choose from "
            f"{', '.join(MT_BENCH_MODES)} (arena-hard is --bench arena-hard)"
        )
    if "pairwise-baseline" in chosen and not baseline:
        raise fail("--mode pairwise-baseline needs --baseline MODEL (the model to compare with)")
    if "pairwise-all" in chosen and len(models) < 2:
        raise fail("--mode pairwise-all compares models in pairs: name two or more in --models")
    return chosen


def _check_prompt_file(location: str | None, modes: list[str]) -> None:
    """Fail before answering when the judge-prompt file cannot serve a mode at all (the
    grading step checks every prompt shape it needs once the answers are there)."""
    from arena.errors import ArenaError
    from arena.judge.prompts import load_prompt_file, prompt_scale
    from arena.judge.verdicts import Scale

    try:
        prompts, source = load_prompt_file(location)
    except ArenaError as e:
        raise fail(e.message) from None
    have = {prompt_scale(p) for p in prompts}
    for mode in modes:
        scale = {"single": Scale.RATING, "arena-hard": Scale.GRADED_PAIR}.get(mode, Scale.PAIR)
        if scale not in have:
            raise fail(
                f"{source} has no prompt for {mode} grading ({scale.value} verdicts); add "
                "one, or leave out --judge-prompts to use Arena's own prompts"
            )


def _answer(
    questions: str,
    models: list[str],
    out: Path,
    config: Path | None,
    limit: int | None,
    max_tokens: int,
    concurrency: int,
    progress: bool,
) -> None:
    from arena.judge.steps import answer_step

    summary = answer_step(
        questions,
        models,
        out,
        config=config,
        concurrency=concurrency,
        max_tokens=max_tokens,
        limit=limit,
        progress=progress,
    )
    if summary.failed:
        typer.echo(
            f"{summary.failed} answers failed, so grading would leave those questions out. "
            "Rerun the same command once the model(s) answer again: answers and judgments "
            "already on disk are kept and only the missing ones are made.",
            err=True,
        )
        raise typer.Exit(code=1)
