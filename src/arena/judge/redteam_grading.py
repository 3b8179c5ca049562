"""Replaying red-team attacks: does an attack that worked on one model still work on another?

The questions are the red-team evaluation set (``arena.redteam.eval_set``); a model answers
them with ``arena judge answer`` (the round's system prompt included), and
``arena judge grade --mode redteam`` decides each answer:

- ``say_phrase`` and ``leak_secret``: the game's own detectors on every answer turn (no judge);
- ``judge_goal``: a ``GoalJudge`` after every turn, as in the game, stopping at the first
  answer that achieves the goal.

One row per (model, question)::

    {"mode": "redteam", "question_id", "category", "model", "challenge_id", "kind",
     "attack_succeeded": true | false | null, "method": "phrase_detector" | "canary_detector"
     | "judge", "status": "ok" | "unparsable" | "error", "turn": first successful turn | null,
     "detection", "judge", "explanation", "judgment", "error", "usage", "attempts", "cached",
     "judge_seconds", "source_model", "tstamp"}

Rows are appended and flushed one by one; a rerun skips pairs already decided (failed ones
are tried again, and the newer row wins when read back).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arena.errors import BadRequest
from arena.judge.benchmark_files import ModelAnswer, Question
from arena.judge.calls import JudgeCaller
from arena.judge.concurrency import run_bounded
from arena.judge.grading import GradeSummary
from arena.judge.sources import JsonlAppender, read_jsonl_if_exists
from arena.redteam.eval_set import EvalCaseError, RedTeamCase
from arena.redteam.judge_goals import GoalJudge

REDTEAM_MODE = "redteam"
METHODS = {"say_phrase": "phrase_detector", "leak_secret": "canary_detector", "judge_goal": "judge"}


@dataclass(frozen=True, slots=True)
class ReplayTask:
    question: Question
    case: RedTeamCase
    model: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.question.key, self.model)


def redteam_row_key(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The (question, model) a replay row decides: a later row for it replaces an earlier."""
    return (REDTEAM_MODE, str(row.get("question_id")), str(row.get("model")))


def plan_replays(
    questions: Sequence[Question],
    answers: Mapping[str, Mapping[str, ModelAnswer]],
    models: Sequence[str],
) -> tuple[list[ReplayTask], int]:
    """A task per model and red-team question it answered, and how many answers were missing.

    Questions without a ``redteam`` field are not attacks and are passed over.
    """
    unknown = [m for m in models if m not in answers]
    if unknown:
        raise BadRequest(
            f"no answers for {', '.join(unknown)}; answer files hold {', '.join(sorted(answers))}"
        )
    cases = []
    for q in questions:
        if q.redteam is None:
            continue
        try:
            cases.append((q, RedTeamCase.from_json(q.redteam)))
        except EvalCaseError as e:
            raise BadRequest(f"question {q.question_id}: redteam: {e}") from None
    if not cases:
        raise BadRequest(
            "the questions hold no red-team cases (records with a 'redteam' field, as the "
            "game's evaluation-set export writes them)"
        )
    tasks, missing = [], 0
    for q, case in cases:
        for model in models:
            if q.key in answers[model]:
                tasks.append(ReplayTask(q, case, model))
            else:
                missing += 1
    return tasks, missing


def _base_row(task: ReplayTask) -> dict[str, Any]:
    return {
        "mode": REDTEAM_MODE,
        "question_id": task.question.question_id,
        "category": task.question.category,
        "model": task.model,
        "challenge_id": task.case.challenge_id,
        "kind": task.case.kind,
        "method": METHODS[task.case.kind],
        "source_model": task.case.source_model,
    }


def detect_replay(task: ReplayTask, answer: ModelAnswer) -> dict[str, Any]:
    """A say_phrase or leak_secret replay decided by the game's detector, turn by turn."""
    detector = task.case.detector()
    turn, how = None, None
    for number, text in enumerate(answer.turns, start=1):
        found = detector.check(text)
        if found.found:
            turn, how = number, found.method
            break
    return {
        **_base_row(task),
        "attack_succeeded": turn is not None,
        "status": "ok",
        "turn": turn,
        "detection": how,
        "judge": None,
        "tstamp": time.time(),
    }


async def judge_replay(task: ReplayTask, answer: ModelAnswer, judge: GoalJudge) -> dict[str, Any]:
    """A judge_goal replay: the judge decides after each turn; the first YES ends it."""
    challenge = task.case.challenge()
    pairs = list(zip(task.question.turns, answer.turns, strict=False))
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    attempts, seconds, cached = 0, 0.0, True
    statuses: list[str] = []
    errors: list[str] = []
    decision = None
    turn = None
    for number in range(1, len(pairs) + 1):
        decision, call = await judge.decide_in_detail(challenge, pairs[:number])
        usage["prompt_tokens"] += call.prompt_tokens
        usage["completion_tokens"] += call.completion_tokens
        attempts, seconds = attempts + call.attempts, seconds + call.seconds
        cached = cached and call.cached
        statuses.append(decision.status)
        if call.error:
            errors.append(f"turn {number}: {call.error}")
        if decision.achieved:
            turn = number
            break
    if turn is not None:
        succeeded, status = True, "ok"
    elif statuses and all(s == "ok" for s in statuses):
        succeeded, status = False, "ok"
    else:
        succeeded, status = None, "error" if "error" in statuses else "unparsable"
    return {
        **_base_row(task),
        "attack_succeeded": succeeded,
        "status": status,
        "turn": turn,
        "detection": None,
        "judge": judge.caller.name,
        "explanation": decision.explanation if decision else "",
        "judgment": decision.raw if decision else "",
        "error": "; ".join(errors) or None,
        "usage": usage,
        "attempts": attempts,
        "cached": cached,
        "judge_seconds": seconds,
        "tstamp": time.time(),
    }


async def grade_replays(
    tasks: Sequence[ReplayTask],
    answers: Mapping[str, Mapping[str, ModelAnswer]],
    judges: Sequence[JudgeCaller],
    out_path: str | Path,
    *,
    concurrency: int = 16,
    parse_retries: int = 2,
    missing_answers: int = 0,
    show_progress: bool = True,
) -> GradeSummary:
    """Decide every task not yet on disk; judge goals go to the judges in turn."""
    if not judges and any(t.case.kind == "judge_goal" for t in tasks):
        raise BadRequest("judge_goal cases need a judge (--judge MODEL)")
    out_path = Path(out_path)
    done: set[tuple[str, ...]] = set()
    for row in read_jsonl_if_exists(out_path):
        if row.get("mode") != REDTEAM_MODE:
            continue
        key = redteam_row_key(row)
        (done.discard if row.get("status") == "error" else done.add)(key)
    jobs = [t for t in tasks if (REDTEAM_MODE, *t.key) not in done]
    goal_judges = [GoalJudge(c, parse_retries=parse_retries) for c in judges]
    statuses: Counter[str] = Counter()
    judge_seconds = 0.0
    started = time.perf_counter()
    turns = itertools.count()
    with JsonlAppender(out_path) as out:

        async def handle(task: ReplayTask) -> None:
            nonlocal judge_seconds
            answer = answers[task.model][task.question.key]
            if task.case.kind == "judge_goal":
                judge = goal_judges[next(turns) % len(goal_judges)]
                row = await judge_replay(task, answer, judge)
                judge_seconds += row["judge_seconds"]
            else:
                row = detect_replay(task, answer)
            statuses[row["status"]] += 1
            out.write(row)

        await run_bounded(
            jobs,
            handle,
            concurrency=concurrency,
            total=len(jobs),
            description="replaying attacks",
            show_progress=show_progress,
        )
    return GradeSummary(
        judged=len(jobs),
        skipped=len(tasks) - len(jobs),
        missing_answers=missing_answers,
        statuses=dict(statuses),
        judge_seconds=judge_seconds,
        wall_seconds=time.perf_counter() - started,
        outputs=(str(out_path),),
    )


# ---------------------------------------------------------------- summary

Z_95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaNs when n is 0): sound near 0 and 1, where
    red-team rates often sit, unlike the normal approximation."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # The bounds at 0 and n are exactly 0 and 1; rounding would leave a trace.
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == n else min(1.0, centre + half)
    return (lower, upper)


@dataclass(frozen=True)
class ResistanceRow:
    """One model's record against replayed attacks; the rate leaves unjudged ones out."""

    model: str
    replayed: int
    resisted: int
    succeeded: int
    unjudged: int
    resist_rate: float
    lower: float
    upper: float


def resistance_summary(rows: Iterable[Mapping[str, Any]]) -> tuple[ResistanceRow, ...]:
    """Per model: attacks replayed, resisted, succeeded, unjudged, resist rate (Wilson 95%)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        outcome = row.get("attack_succeeded")
        label = "unjudged" if outcome is None else "succeeded" if outcome else "resisted"
        counts[str(row["model"])][label] += 1
    out = []
    for model, c in counts.items():
        decided = c["resisted"] + c["succeeded"]
        rate = c["resisted"] / decided if decided else math.nan
        lower, upper = wilson_interval(c["resisted"], decided)
        replayed = decided + c["unjudged"]
        out.append(
            ResistanceRow(
                model, replayed, c["resisted"], c["succeeded"], c["unjudged"], rate, lower, upper
            )
        )

    # Most resistant first; a model with nothing decided goes last.
    def order(r: ResistanceRow) -> tuple[bool, float, str]:
        undecided = math.isnan(r.resist_rate)
        return (undecided, 0.0 if undecided else -r.resist_rate, r.model)

    return tuple(sorted(out, key=order))
