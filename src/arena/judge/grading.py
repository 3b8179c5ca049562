"""Grading answers with judge models, in four modes, into the public judgment layouts.

- ``single``: each answer gets a 1–10 rating per turn; math, reasoning and coding (by
  default) are graded against the reference answer. Rows: MT-Bench's single layout.
- ``pairwise-baseline`` / ``pairwise-all``: each model against the baseline, or every pair,
  per turn, judged in both orders (A/B swapped); the two verdicts must agree, otherwise the
  pair counts as a tie. Rows: MT-Bench's pairwise layout.
- ``arena-hard``: each model against the baseline on the first turn with five verdict levels,
  in both orders (game 1 puts the baseline first, as Arena-Hard does). Rows: Arena-Hard's
  judgment layout with ``games``.

A judgment is one task; tasks run with a fixed number of judge calls in flight and go to the
judges round-robin or to every judge (one output file per judge). Rows are appended and
flushed one by one; a rerun skips tasks already judged (failed ones are judged again, and the
newer row wins when read back).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations
from pathlib import Path
from typing import Any

from arena.errors import BadRequest
from arena.judge.benchmark_files import JudgePrompt, ModelAnswer, Question
from arena.judge.calls import JudgeCaller, Verdict, judge_verdict
from arena.judge.concurrency import run_bounded
from arena.judge.prompts import PromptBook, pair_fields, render, single_fields
from arena.judge.sources import JsonlAppender, read_jsonl_if_exists
from arena.judge.verdicts import Scale


class Mode(StrEnum):
    SINGLE = "single"
    PAIRWISE_BASELINE = "pairwise-baseline"
    PAIRWISE_ALL = "pairwise-all"
    ARENA_HARD = "arena-hard"


class Spread(StrEnum):
    ROUND_ROBIN = "round-robin"
    EACH = "each"


DEFAULT_REFERENCE_CATEGORIES = frozenset({"math", "reasoning", "coding"})


@dataclass(frozen=True, slots=True)
class Task:
    """One judgment to make: ``models`` has one name (single) or two (pairwise; for
    arena-hard the second is the baseline)."""

    question: Question
    models: tuple[str, ...]
    turn: int

    def key(self, mode: Mode, judge: str) -> tuple[str, ...]:
        return (mode.value, judge, self.question.key, *self.models, str(self.turn))


def row_key(row: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The task key of a judgment row already on disk (None for rows of another layout)."""
    mode = row.get("mode")
    judge = row.get("judge")
    judge_name = judge[0] if isinstance(judge, list) else judge
    qid = str(row.get("question_id", row.get("uid")))
    if mode == Mode.SINGLE:
        return (mode, judge_name, qid, row["model"], str(row["turn"]))
    if mode in (Mode.PAIRWISE_BASELINE, Mode.PAIRWISE_ALL):
        return (mode, judge_name, qid, row["model_1"], row["model_2"], str(row["turn"]))
    if mode == Mode.ARENA_HARD:
        return (mode, judge_name, qid, row["model"], row["baseline"], "1")
    return None


def row_failed(row: Mapping[str, Any]) -> bool:
    if "games" in row:
        return any(g.get("status") == "error" for g in row["games"])
    statuses = [row.get("status"), row.get("g1_status"), row.get("g2_status")]
    return "error" in statuses


@dataclass(frozen=True, slots=True)
class GradeSummary:
    judged: int
    skipped: int
    missing_answers: int
    statuses: dict[str, int]
    judge_seconds: float
    wall_seconds: float
    outputs: tuple[str, ...]


def plan_tasks(
    mode: Mode,
    questions: Sequence[Question],
    answers: Mapping[str, Mapping[str, ModelAnswer]],
    models: Sequence[str],
    *,
    baseline: str | None = None,
) -> tuple[list[Task], int]:
    """Every judgment this mode needs, and how many had to be left out for lack of answers."""
    unknown = [m for m in [*models, *([baseline] if baseline else [])] if m not in answers]
    if unknown:
        raise BadRequest(
            f"no answers for {', '.join(unknown)}; answer files hold {', '.join(sorted(answers))}"
        )
    if mode in (Mode.PAIRWISE_BASELINE, Mode.ARENA_HARD) and not baseline:
        raise BadRequest(f"mode {mode.value} needs --baseline")
    if mode is Mode.SINGLE:
        groups = [(m,) for m in models]
    elif mode is Mode.PAIRWISE_ALL:
        groups = list(combinations(models, 2))
    else:
        groups = [(m, baseline) for m in models if m != baseline]
    tasks: list[Task] = []
    missing = 0
    for q in questions:
        turns = 1 if mode is Mode.ARENA_HARD else len(q.turns)
        for group in groups:
            have = [answers[m].get(q.key) for m in group]
            for turn in range(1, turns + 1):
                if all(a is not None and len(a.turns) >= turn for a in have):
                    tasks.append(Task(q, tuple(group), turn))  # type: ignore[arg-type]
                else:
                    missing += 1
    return tasks, missing


class Grader:
    """Turns tasks into judgment rows with a given prompt book and judge."""

    def __init__(
        self,
        mode: Mode,
        prompts: PromptBook,
        answers: Mapping[str, Mapping[str, ModelAnswer]],
        *,
        reference_categories: frozenset[str] = DEFAULT_REFERENCE_CATEGORIES,
        parse_retries: int = 2,
    ) -> None:
        self.mode = mode
        self.prompts = prompts
        self.answers = answers
        self.reference_categories = reference_categories
        self.parse_retries = parse_retries

    def _wants_reference(self, q: Question) -> bool:
        # Arena-Hard judges against the baseline, not against reference answers.
        if self.mode is Mode.ARENA_HARD:
            return False
        return q.category in self.reference_categories and bool(q.reference)

    def check_prompts(self, tasks: Sequence[Task]) -> None:
        """Fail before any call when the prompt file lacks a prompt some task needs."""
        for task in tasks:
            self._prompt_for(task)

    def _prompt_for(self, task: Task) -> JudgePrompt:
        scale = {
            Mode.SINGLE: Scale.RATING,
            Mode.ARENA_HARD: Scale.GRADED_PAIR,
        }.get(self.mode, Scale.PAIR)
        return self.prompts.choose(
            scale, multi_turn=task.turn > 1, reference=self._wants_reference(task.question)
        )

    def single_messages(self, task: Task) -> list[dict[str, str]]:
        """The judge prompt for a single-grading task, as chat messages."""
        q = task.question
        reference = q.reference if self._wants_reference(q) else None
        answer = self._turns(task.models[0], task)
        return render(
            self._prompt_for(task), single_fields(q.turns[: task.turn], answer, reference)
        )

    def _turns(self, model: str, task: Task) -> tuple[str, ...]:
        return self.answers[model][task.question.key].turns[: task.turn]

    async def judge(self, task: Task, caller: JudgeCaller) -> dict[str, Any]:
        prompt = self._prompt_for(task)
        q = task.question
        questions = q.turns[: task.turn]
        reference = q.reference if self._wants_reference(q) else None
        base: dict[str, Any] = {
            "question_id": q.question_id,
            "category": q.category,
            "mode": self.mode.value,
        }
        if self.mode is Mode.SINGLE:
            (model,) = task.models
            messages = self.single_messages(task)
            v = await judge_verdict(
                caller, messages, Scale.RATING, parse_retries=self.parse_retries
            )
            return {
                **base,
                "model": model,
                "judge": [caller.name, prompt.name],
                "user_prompt": messages[-1]["content"],
                "judgment": v.text,
                "score": v.value if v.status == "ok" else -1,
                "turn": task.turn,
                **_verdict_meta(v),
                "tstamp": time.time(),
            }
        first, second = task.models
        # Arena-Hard's game 1 shows the baseline as assistant A; MT-Bench's shows model_1.
        if self.mode is Mode.ARENA_HARD:
            orders = [(second, first), (first, second)]
        else:
            orders = [(first, second), (second, first)]
        games = []
        for a, b in orders:
            fields = pair_fields(questions, self._turns(a, task), self._turns(b, task), reference)
            messages = render(prompt, fields)
            scale = Scale.GRADED_PAIR if self.mode is Mode.ARENA_HARD else Scale.PAIR
            v = await judge_verdict(caller, messages, scale, parse_retries=self.parse_retries)
            games.append((messages, v))
        if self.mode is Mode.ARENA_HARD:
            return {
                **base,
                "model": first,
                "baseline": second,
                "judge": caller.name,
                "prompt_name": prompt.name,
                "cluster": q.cluster,
                "games": [
                    {
                        "user_prompt": m[-1]["content"],
                        "judgment": v.text,
                        "score": v.value if v.status == "ok" else None,
                        **_verdict_meta(v),
                    }
                    for m, v in games
                ],
                "tstamp": time.time(),
            }
        (m1, v1), (m2, v2) = games
        g1 = _pair_winner(v1, a_model="model_1", b_model="model_2")
        g2 = _pair_winner(v2, a_model="model_2", b_model="model_1")
        return {
            **base,
            "model_1": first,
            "model_2": second,
            "g1_winner": g1,
            "g2_winner": g2,
            "winner": combine_pair_games(g1, g2),
            "judge": [caller.name, prompt.name],
            "g1_user_prompt": m1[-1]["content"],
            "g1_judgment": v1.text,
            "g2_user_prompt": m2[-1]["content"],
            "g2_judgment": v2.text,
            "turn": task.turn,
            "g1_status": v1.status,
            "g2_status": v2.status,
            "error": v1.error or v2.error,
            "usage": {
                "prompt_tokens": v1.prompt_tokens + v2.prompt_tokens,
                "completion_tokens": v1.completion_tokens + v2.completion_tokens,
            },
            "attempts": v1.attempts + v2.attempts,
            "cached": v1.cached and v2.cached,
            "judge_seconds": v1.seconds + v2.seconds,
            "tstamp": time.time(),
        }


def _verdict_meta(v: Verdict) -> dict[str, Any]:
    return {
        "status": v.status,
        "error": v.error,
        "usage": v.usage(),
        "attempts": v.attempts,
        "samples": v.samples,
        "cached": v.cached,
        "judge_seconds": v.seconds,
    }


def _pair_winner(v: Verdict, *, a_model: str, b_model: str) -> str:
    if v.status != "ok":
        return "error"
    return {"A": a_model, "B": b_model}.get(str(v.value), "tie")


def combine_pair_games(g1: str, g2: str) -> str:
    """One outcome from both orders: agreement stands, disagreement is a tie, a failed game
    leaves the pair undecided (``error``), never guessed from the other order alone."""
    if "error" in (g1, g2):
        return "error"
    return g1 if g1 == g2 else "tie"


def judge_output_path(out: Path, judge: str, n_outputs: int) -> Path:
    if n_outputs == 1:
        return out
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", judge)
    return out.with_name(f"{out.stem}.{safe}{out.suffix or '.jsonl'}")


def _assign(
    tasks: Sequence[Task], callers: Sequence[JudgeCaller], spread: Spread
) -> Iterator[tuple[Task, JudgeCaller]]:
    if spread is Spread.EACH:
        for task in tasks:
            for caller in callers:
                yield task, caller
    else:
        for i, task in enumerate(tasks):
            yield task, callers[i % len(callers)]


async def grade(
    grader: Grader,
    tasks: Sequence[Task],
    callers: Sequence[JudgeCaller],
    out_path: str | Path,
    *,
    spread: Spread = Spread.ROUND_ROBIN,
    concurrency: int = 16,
    missing_answers: int = 0,
    show_progress: bool = True,
) -> GradeSummary:
    """Judge every task not yet on disk; rows go to one file, or one per judge (``each``)."""
    if not callers:
        raise BadRequest("at least one judge is needed")
    grader.check_prompts(tasks)
    out_path = Path(out_path)
    n_outputs = len(callers) if spread is Spread.EACH else 1
    paths = {c.name: judge_output_path(out_path, c.name, n_outputs) for c in callers}
    done: set[tuple[str, ...]] = set()
    for path in set(paths.values()):
        for row in read_jsonl_if_exists(path):
            key = row_key(row)
            if key is None:
                continue
            if row_failed(row):
                done.discard(key)
            else:
                done.add(key)
    jobs = [
        (t, c) for t, c in _assign(tasks, callers, spread) if t.key(grader.mode, c.name) not in done
    ]
    all_jobs = len(tasks) * (len(callers) if spread is Spread.EACH else 1)
    statuses: Counter[str] = Counter()
    judge_seconds = 0.0
    writers = {p: JsonlAppender(p) for p in set(paths.values())}
    started = time.perf_counter()
    try:

        async def handle(job: tuple[Task, JudgeCaller]) -> None:
            nonlocal judge_seconds
            task, caller = job
            row = await grader.judge(task, caller)
            judge_seconds += _row_seconds(row)
            for status in _row_statuses(row):
                statuses[status] += 1
            writers[paths[caller.name]].write(row)

        await run_bounded(
            jobs,
            handle,
            concurrency=concurrency,
            total=len(jobs),
            description=f"judging ({grader.mode.value})",
            show_progress=show_progress,
        )
    finally:
        for w in writers.values():
            w.close()
    return GradeSummary(
        judged=len(jobs),
        skipped=all_jobs - len(jobs),
        missing_answers=missing_answers,
        statuses=dict(statuses),
        judge_seconds=judge_seconds,
        wall_seconds=time.perf_counter() - started,
        outputs=tuple(str(p) for p in writers),
    )


def _row_statuses(row: Mapping[str, Any]) -> list[str]:
    if "games" in row:
        return [g["status"] for g in row["games"]]
    if "status" in row:
        return [row["status"]]
    return [row["g1_status"], row["g2_status"]]


def _row_seconds(row: Mapping[str, Any]) -> float:
    if "games" in row:
        return sum(g.get("judge_seconds", 0.0) for g in row["games"])
    return float(row.get("judge_seconds", 0.0))
