"""Agreement between two judges, or between a judge and the arena's human votes.

Votes are keyed by (question, the unordered model pair, turn) and say which model won or
"tie". Agreement is reported twice, as in the MT-Bench paper: *with ties* over every
comparison both sides voted on, and *without ties*, dropping comparisons where either side
said tie. Human votes come from battles in the clean-battle layout (``conversation_a``/``b``);
``battles_as_benchmark`` turns them into questions and answers so the ordinary pairwise
grader judges them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from arena.errors import BadRequest
from arena.judge.benchmark_files import ModelAnswer, Question
from arena.judge.grading import Task, combine_pair_games
from arena.judge.judgments import judge_name

VoteKey = tuple[str, str, str, int]


def vote_key(question_id: Any, model_1: str, model_2: str, turn: int) -> VoteKey:
    low, high = sorted((str(model_1), str(model_2)))
    return (str(question_id), low, high, int(turn))


def judge_votes(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[VoteKey, str]]:
    """Pairwise judgment rows as votes, per judge: the winner's name or ``tie``
    (both orders combined; a failed game gives no vote)."""
    votes: dict[str, dict[VoteKey, str]] = {}
    for row in rows:
        m1, m2 = str(row["model_1"]), str(row["model_2"])
        winner = row.get("winner")
        if winner is None:
            sides = {m1: "model_1", m2: "model_2"}
            winner = combine_pair_games(
                sides.get(row["g1_winner"], row["g1_winner"]),
                sides.get(row["g2_winner"], row["g2_winner"]),
            )
        if winner == "error":
            continue
        vote = {"model_1": m1, "model_2": m2}.get(winner, "tie")
        key = vote_key(row.get("question_id"), m1, m2, int(row.get("turn", 1)))
        votes.setdefault(judge_name(row), {})[key] = vote
    return votes


def human_votes(battles: Iterable[Mapping[str, Any]], keys: Sequence[str]) -> dict[VoteKey, str]:
    """Human votes of clean battles, keyed like the judge's (see ``battles_as_benchmark``)."""
    votes = {}
    for battle, qkey in zip(battles, keys, strict=True):
        winner = battle["winner"]
        vote = {"model_a": battle["model_a"], "model_b": battle["model_b"]}.get(winner, "tie")
        turn = min(_turn_count(battle), 2)
        votes[vote_key(qkey, battle["model_a"], battle["model_b"], turn)] = str(vote)
    return votes


@dataclass(frozen=True)
class Agreement:
    n_with_tie: int
    agree_with_tie: int
    n_without_tie: int
    agree_without_tie: int

    @property
    def with_tie(self) -> float:
        return self.agree_with_tie / self.n_with_tie if self.n_with_tie else float("nan")

    @property
    def without_tie(self) -> float:
        return self.agree_without_tie / self.n_without_tie if self.n_without_tie else float("nan")


def agreement(first: Mapping[VoteKey, str], second: Mapping[VoteKey, str]) -> Agreement:
    """How often two sets of votes agree on the comparisons both made."""
    shared = [k for k in first if k in second]
    same = sum(first[k] == second[k] for k in shared)
    decisive = [k for k in shared if first[k] != "tie" and second[k] != "tie"]
    same_decisive = sum(first[k] == second[k] for k in decisive)
    return Agreement(len(shared), same, len(decisive), same_decisive)


def _turns(conversation: Sequence[Mapping[str, Any]], role: str) -> list[str]:
    out = []
    for message in conversation:
        if message.get("role") == role:
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            out.append(str(content or ""))
    return out


def _turn_count(battle: Mapping[str, Any]) -> int:
    return len(_turns(battle["conversation_a"], "user"))


@dataclass(frozen=True)
class BattleBenchmark:
    """Stored battles as a benchmark: one question per battle, both models' answers."""

    tasks: tuple[Task, ...]
    answers: dict[str, dict[str, ModelAnswer]]
    battles: tuple[Mapping[str, Any], ...]
    keys: tuple[str, ...]
    skipped: dict[str, int]


def battles_as_benchmark(
    battles: Iterable[Mapping[str, Any]], *, max_turns: int = 2
) -> BattleBenchmark:
    """Judge tasks for stored battles: the last turn is judged with the whole conversation
    in view (the human voted on all of it). Battles the judge prompts cannot show (more
    than ``max_turns`` turns, diverging user turns, no answer) are skipped and counted."""
    tasks: list[Task] = []
    answers: dict[str, dict[str, ModelAnswer]] = {}
    kept: list[Mapping[str, Any]] = []
    keys: list[str] = []
    skipped = {"too_many_turns": 0, "inconsistent_conversation": 0, "same_model": 0}
    seen: dict[str, int] = {}
    for index, battle in enumerate(battles):
        for field in ("model_a", "model_b", "winner", "conversation_a", "conversation_b"):
            if field not in battle:
                raise BadRequest(f"battle {index + 1} lacks {field} (clean-battle layout needed)")
        if battle["model_a"] == battle["model_b"]:
            skipped["same_model"] += 1
            continue
        questions = _turns(battle["conversation_a"], "user")
        a_turns = _turns(battle["conversation_a"], "assistant")
        b_turns = _turns(battle["conversation_b"], "assistant")
        if questions != _turns(battle["conversation_b"], "user") or not questions:
            skipped["inconsistent_conversation"] += 1
            continue
        if len(questions) > max_turns:
            skipped["too_many_turns"] += 1
            continue
        if len(a_turns) < len(questions) or len(b_turns) < len(questions):
            skipped["inconsistent_conversation"] += 1
            continue
        base_key = str(battle.get("question_id") or f"battle-{index}")
        seen[base_key] = seen.get(base_key, 0) + 1
        qkey = base_key if seen[base_key] == 1 else f"{base_key}#{seen[base_key]}"
        question = Question(qkey, str(battle.get("category") or "general"), tuple(questions))
        for model, turns in ((battle["model_a"], a_turns), (battle["model_b"], b_turns)):
            answers.setdefault(model, {})[qkey] = ModelAnswer(qkey, model, tuple(turns))
        tasks.append(Task(question, (battle["model_a"], battle["model_b"]), len(questions)))
        kept.append(battle)
        keys.append(qkey)
    return BattleBenchmark(tuple(tasks), answers, tuple(kept), tuple(keys), skipped)
