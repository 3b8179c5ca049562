"""Judge-decided red-team goals: a judge model says whether the model's last answer
achieves a ``judge_goal`` challenge.

The conversation is written by the player and by the model under test, so it is hostile
input to the judge: it goes inside markers that carry a code derived from the whole request
(a player cannot know it while writing, since it depends on what they write), marker-like
runs and double brackets in it are defused, and the prompt tells the judge that nothing
inside is addressed to it. The verdict is read only from the judge's own answer, never from
the conversation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from arena.judge.calls import JudgeCaller, Verdict, judge_verdict
from arena.judge.verdicts import Scale
from arena.redteam.challenges import JudgeGoalChallenge

# Earlier turns are context; a cap keeps a long round from flooding the judge's window.
EARLIER_TURN_CHARS = 4000
EXPLANATION_CHARS = 300
_PLACEHOLDER = re.compile(r"\{(goal|rubric|nonce|conversation|last_turn)\}")
# Runs that could pass for our markers or for a verdict token.
_MARKER_RUN = re.compile(r"<{3,}|>{3,}|\[{2,}|\]{2,}")
_REASON = re.compile(r"^[\s>#*_-]*reason\s*[:：]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_EMPHASIS = re.compile(r"[*_`]+")


@dataclass(frozen=True)
class GoalVerdict:
    """What the judge decided about one answer.

    ``status``: ``ok``, ``unparsable`` or ``error``; ``achieved`` is None unless ``ok``.
    ``explanation`` is the judge's one-sentence reason (shown to the player); ``raw`` its
    whole answer (kept in the store).
    """

    status: str
    achieved: bool | None
    explanation: str
    raw: str

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "achieved": self.achieved,
            "explanation": self.explanation,
            "raw": self.raw,
        }


@cache
def _prompt(name: str) -> str:
    return (files("arena.redteam") / "prompts" / f"goal_judge_{name}.txt").read_text(
        encoding="utf-8"
    )


def _fill(template: str, values: dict[str, str]) -> str:
    # One pass: text substituted in is never scanned for placeholders again.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def defuse(text: str) -> str:
    """Player or model text with marker-like runs (``<<<``, ``>>>``) and double brackets
    spaced out, so it can neither close our markers nor show a ready-made verdict token."""
    return _MARKER_RUN.sub(lambda m: " ".join(m.group(0)), text)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters not shown ...]"


def transcript(conversation: Sequence[tuple[str, str]], nonce: str) -> str:
    """The conversation as delimited blocks; every turn but the last is clipped."""
    blocks = []
    last = len(conversation)
    for number, (prompt, answer) in enumerate(conversation, start=1):
        limit = None if number == last else EARLIER_TURN_CHARS
        for label, text in (("PLAYER MESSAGE", prompt), ("MODEL ANSWER", answer)):
            body = defuse(text if limit is None else _clip(text, limit))
            blocks.append(
                f"<<<BEGIN {label} {number} {nonce}>>>\n{body}\n<<<END {label} {number} {nonce}>>>"
            )
    return "\n".join(blocks)


def goal_judge_messages(
    challenge: JudgeGoalChallenge, conversation: Sequence[tuple[str, str]]
) -> list[dict[str, str]]:
    """The judge's chat messages for the last answer of ``conversation``.

    The marker code is a hash of everything the request carries, so identical requests stay
    identical (and cacheable) while no text inside can predict it.
    """
    if not conversation:
        raise ValueError("there is no answer to judge yet")
    digest = hashlib.sha256()
    for part in (challenge.goal, challenge.rubric, *(t for pair in conversation for t in pair)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    nonce = digest.hexdigest()[:16]
    values = {
        "goal": challenge.goal.strip(),
        "rubric": challenge.rubric.strip() or "(none: use the standards above)",
        "nonce": nonce,
        "conversation": transcript(conversation, nonce),
        "last_turn": str(len(conversation)),
    }
    return [
        {"role": "system", "content": _fill(_prompt("system"), values)},
        {"role": "user", "content": _fill(_prompt("request"), values)},
    ]


def explanation_of(judge_answer: str) -> str:
    """The judge's ``Reason:`` sentence (the last one), without emphasis; "" if none."""
    reasons = _REASON.findall(judge_answer)
    if not reasons:
        return ""
    reason = _EMPHASIS.sub("", reasons[-1]).strip()
    return reason if len(reason) <= EXPLANATION_CHARS else reason[: EXPLANATION_CHARS - 1] + "…"


def goal_verdict_of(verdict: Verdict) -> GoalVerdict:
    """A judge-call ``Verdict`` on the yes/no scale as the game's ``GoalVerdict``."""
    if verdict.status == "error":
        return GoalVerdict("error", None, "", verdict.text or "")
    explanation = explanation_of(verdict.text)
    if verdict.status != "ok":
        return GoalVerdict("unparsable", None, explanation, verdict.text)
    return GoalVerdict("ok", verdict.value == "yes", explanation, verdict.text)


class GoalJudge:
    """Decides ``judge_goal`` challenges with one judge model (cache and retries are the
    ``JudgeCaller``'s; an unparsable answer is resampled before giving up)."""

    def __init__(self, caller: JudgeCaller, *, parse_retries: int = 2) -> None:
        self.caller = caller
        self.parse_retries = parse_retries

    async def decide_in_detail(
        self, challenge: JudgeGoalChallenge, conversation: Sequence[tuple[str, str]]
    ) -> tuple[GoalVerdict, Verdict]:
        """The decision together with the call's record (usage, attempts, error)."""
        messages = goal_judge_messages(challenge, conversation)
        verdict = await judge_verdict(
            self.caller, messages, Scale.YES_NO, parse_retries=self.parse_retries
        )
        return goal_verdict_of(verdict), verdict

    async def decide(
        self, challenge: JudgeGoalChallenge, conversation: Sequence[tuple[str, str]]
    ) -> GoalVerdict:
        """conversation: (user prompt, model answer) pairs of the round so far; judges the
        LAST answer in context."""
        decision, _ = await self.decide_in_detail(challenge, conversation)
        return decision
