"""The values a battle is built from: its modes and states, vote choices and direct-chat
feedback (and parsing a client's vote into them), turns, answers, identity leaks and what a
vote records. All frozen; the transitions between them live in ``battle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from arena.errors import BadRequest


class BattleMode(StrEnum):
    BATTLE = "battle"
    SIDE_BY_SIDE = "side_by_side"
    DIRECT = "direct"

    @property
    def anonymous(self) -> bool:
        return self is BattleMode.BATTLE

    @property
    def sides(self) -> tuple[str, ...]:
        return ("a",) if self is BattleMode.DIRECT else ("a", "b")


class BattleState(StrEnum):
    CREATED = "created"
    STREAMING = "streaming"
    READY = "ready"
    VOTED = "voted"
    CLOSED = "closed"


class VoteChoice(StrEnum):
    """Votes in the two-model modes, named after the public clean-battle ``winner`` values."""

    A_BETTER = "a_better"
    B_BETTER = "b_better"
    TIE = "tie"
    BOTH_BAD = "both_bad"

    @property
    def winner(self) -> str:
        """The clean-battle ``winner`` value: model_a, model_b, tie or ``tie (bothbad)``."""
        return {
            VoteChoice.A_BETTER: "model_a",
            VoteChoice.B_BETTER: "model_b",
            VoteChoice.TIE: "tie",
            VoteChoice.BOTH_BAD: "tie (bothbad)",
        }[self]


class Feedback(StrEnum):
    """Feedback on a single-model (direct) chat."""

    UPVOTE = "upvote"
    DOWNVOTE = "downvote"
    FLAG = "flag"


def parse_vote(mode: BattleMode, value: str) -> VoteChoice | Feedback:
    """Turn a client's vote string into the right enum for ``mode`` (BadRequest if unknown)."""
    allowed: type[VoteChoice] | type[Feedback] = (
        Feedback if mode is BattleMode.DIRECT else VoteChoice
    )
    try:
        return allowed(value)
    except ValueError:
        options = ", ".join(v.value for v in allowed)
        raise BadRequest(
            f"unknown vote {value!r} for a {mode.value} chat; expected one of: {options}",
            param="vote",
            code="invalid_vote",
        ) from None


@dataclass(frozen=True, slots=True)
class Answer:
    """One side's finished answer to one turn. ``error`` is the raw upstream message, kept
    for logs and the revealed view only (it may name the model)."""

    text: str
    finish_reason: str | None = None
    error: str | None = None
    finished_at: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True, slots=True)
class Turn:
    prompt: str
    started_at: datetime
    image_ids: tuple[str, ...] = ()
    answers: tuple[tuple[str, Answer], ...] = ()
    regenerations: int = 0

    def answer(self, side: str) -> Answer | None:
        for s, a in self.answers:
            if s == side:
                return a
        return None


@dataclass(frozen=True, slots=True)
class IdentityLeak:
    side: str
    term: str


@dataclass(frozen=True, slots=True)
class VoteOutcome:
    """What the store records for a vote (and what ratings may use)."""

    battle_id: str
    mode: BattleMode
    choice: VoteChoice | Feedback
    models: tuple[str, ...]
    winner: str | None
    anonymous: bool
    leaked: bool
    leak_terms: tuple[str, ...]
    turns: int
    voted_at: datetime
    answer_failed: bool = False

    @property
    def counts_for_ratings(self) -> bool:
        """Only anonymous, unleaked two-model votes on whole answers feed the leaderboard."""
        return (
            self.anonymous
            and not self.leaked
            and not self.answer_failed
            and self.winner is not None
        )
