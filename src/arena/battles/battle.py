"""The life of one battle: turns, answers, regenerate, vote, reveal — as immutable values.

A ``Battle`` is a frozen dataclass; every transition returns a new ``Battle`` and raises a
typed ``arena.errors`` exception when the move is not allowed, so the web layer only stores
what it gets back and maps errors to responses. Nothing here reads a clock or does I/O:
callers pass ``now``.

States::

    created ──start_turn──► streaming ──(every side answered)──► ready ──vote──► voted
                               ▲                                   │
                               └──────── start_turn / regenerate ◄─┘
    any state except voted ──close──► closed

Modes:

- ``battle``: two anonymous models; names are revealed only after the vote.
- ``side_by_side``: two named models; votes are recorded but marked non-anonymous.
- ``direct``: one named model; feedback is upvote / downvote / flag.

``public_view()`` is what a browser may see at any time; for an anonymous battle before its
vote it holds no model names, organizations, raw upstream errors, finish reasons (an
upstream's own word for them, or a model's token limit, tells models apart) or anything
else that maps to them (only the models' own words, which is why identity leaks are
flagged). ``revealed_view()`` adds the names and is refused until the vote is in.

A battle is declared a text or a vision battle when it is created (``vision``); whether a
message may carry an image follows from that declaration alone in an anonymous battle,
never from the models drawn. A battle whose shown answers include a failed one takes no
vote (and no further message) until a regenerate replaces the failed answer: a vote
between an answer and an error says nothing about the models, so it must not reach the
ratings.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from arena.errors import BadRequest, Conflict, Forbidden


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


DEFAULT_MAX_TURNS = 10
LEAK_NOTICE = (
    "One of the answers reveals which model wrote it. You can still vote, but this vote "
    "will not count toward the leaderboard."
)
ANSWER_FAILED_NOTICE = "This model could not answer. You can regenerate or start a new round."
FAILED_BATTLE_NOTICE = (
    "An answer failed, so this round cannot be voted on. Regenerate the answers or start a "
    "new round."
)
TEXT_BATTLE_IMAGE_REFUSAL = (
    "This battle was started without an image, so it takes text only. Start a new round "
    "with the image attached."
)


def new_battle_id() -> str:
    """A random, opaque battle id (uuid4-sized hex) that says nothing about the models."""
    return secrets.token_hex(16)


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


@dataclass(frozen=True, slots=True)
class NewRound:
    """``previous`` is the old battle as it should now be stored (closed unless voted)."""

    previous: Battle
    current: Battle


@dataclass(frozen=True, slots=True)
class Battle:
    """One battle (or named side-by-side, or direct chat). Build with ``Battle.create``."""

    battle_id: str
    mode: BattleMode
    models: tuple[str, ...]
    created_at: datetime
    max_turns: int = DEFAULT_MAX_TURNS
    state: BattleState = BattleState.CREATED
    turns: tuple[Turn, ...] = ()
    leaks: tuple[IdentityLeak, ...] = ()
    vote_choice: VoteChoice | Feedback | None = None
    voted_at: datetime | None = None
    closed_at: datetime | None = None
    updated_at: datetime | None = field(default=None)
    # Declared at creation: the chat carries images (its models were drawn among vision
    # models). An anonymous battle takes images only when this is set.
    vision: bool = False

    # ---- construction -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        mode: BattleMode | str,
        models: tuple[str, ...] | list[str],
        *,
        now: datetime,
        battle_id: str | None = None,
        max_turns: int = DEFAULT_MAX_TURNS,
        vision: bool = False,
    ) -> Battle:
        """Start a battle. ``models`` is (left, right) for two-model modes, (name,) for direct.

        The caller has already sampled (battle) or validated (named modes) the models, among
        vision models when ``vision``.
        """
        mode = BattleMode(mode)
        models = tuple(models)
        if len(models) != len(mode.sides):
            raise BadRequest(
                f"a {mode.value} chat needs {len(mode.sides)} model(s), got {len(models)}",
                param="models",
            )
        if len(models) == 2 and models[0] == models[1]:
            raise BadRequest("the two sides must be different models", param="models")
        if max_turns < 1:
            raise ValueError("max_turns must be at least 1")
        return cls(
            battle_id=battle_id or new_battle_id(),
            mode=mode,
            models=models,
            created_at=now,
            max_turns=max_turns,
            updated_at=now,
            vision=vision,
        )

    # ---- derived ------------------------------------------------------------------

    @property
    def sides(self) -> tuple[str, ...]:
        return self.mode.sides

    @property
    def anonymous(self) -> bool:
        return self.mode.anonymous

    @property
    def leaked(self) -> bool:
        return bool(self.leaks)

    @property
    def revealed(self) -> bool:
        """Names may be shown: always for named modes, after the vote for battles."""
        return not self.anonymous or self.state is BattleState.VOTED

    @property
    def complete_turns(self) -> int:
        return sum(1 for t in self.turns if self._turn_done(t))

    @property
    def answer_failed(self) -> bool:
        """Some answer shown now (the newest of its turn, on any side) failed."""
        return any(answer.failed for turn in self.turns for _, answer in turn.answers)

    @property
    def can_vote(self) -> bool:
        return self.state is BattleState.READY and not self.answer_failed

    @property
    def can_continue(self) -> bool:
        return (
            self.state in (BattleState.CREATED, BattleState.READY)
            and len(self.turns) < self.max_turns
            and not self.answer_failed
        )

    @property
    def can_regenerate(self) -> bool:
        return self.state is BattleState.READY

    def model_for(self, side: str) -> str:
        self._check_side(side)
        return self.models[self.sides.index(side)]

    # ---- transitions ----------------------------------------------------------------

    def check_images(self, *, models_see_images: bool) -> None:
        """May the next message carry an image? An anonymous battle answers from its declared
        kind alone (the same refusal for every text battle, whatever was drawn); a named
        chat from whether its chosen ``models_see_images``."""
        if self.anonymous:
            if not self.vision:
                raise BadRequest(
                    TEXT_BATTLE_IMAGE_REFUSAL, param="image_id", code="text_only_battle"
                )
            return
        if not models_see_images:
            raise BadRequest(
                "Images need vision models and the chosen model(s) cannot see images. "
                "Start a new round with the image attached.",
                param="image_id",
                code="vision_not_supported",
            )

    def start_turn(self, prompt: str, *, now: datetime, image_ids: tuple[str, ...] = ()) -> Battle:
        """The user sends a message; every side must now answer it."""
        self._refuse_if_finished("send another message")
        if self.state is BattleState.STREAMING:
            raise Conflict(
                "the models are still answering the last message", code="battle_streaming"
            )
        self._refuse_if_failed()
        if not prompt.strip() and not image_ids:
            raise BadRequest("the message is empty", param="prompt", code="empty_message")
        if len(self.turns) >= self.max_turns:
            raise BadRequest(
                f"this conversation reached its limit of {self.max_turns} turns; start a new round",
                code="turn_limit_reached",
            )
        turn = Turn(prompt=prompt, started_at=now, image_ids=tuple(image_ids))
        return replace(self, turns=(*self.turns, turn), state=BattleState.STREAMING, updated_at=now)

    def record_answer(
        self,
        side: str,
        text: str,
        *,
        now: datetime,
        finish_reason: str | None = "stop",
        error: str | None = None,
    ) -> Battle:
        """One side finished answering the current turn (``error`` when it failed).

        When every side has answered the battle becomes ``ready``.
        """
        self._check_side(side)
        if self.state is not BattleState.STREAMING:
            raise Conflict(
                f"no answer is expected now (the battle is {self.state.value})",
                code="not_streaming",
            )
        last = self.turns[-1]
        if last.answer(side) is not None:
            raise Conflict(f"side {side} already answered this turn", code="already_answered")
        answer = Answer(text=text, finish_reason=finish_reason, error=error, finished_at=now)
        new_last = replace(last, answers=(*last.answers, (side, answer)))
        state = BattleState.READY if self._turn_done(new_last) else BattleState.STREAMING
        return replace(self, turns=(*self.turns[:-1], new_last), state=state, updated_at=now)

    def regenerate(self, *, now: datetime) -> Battle:
        """Re-answer the last turn on every side (only before the vote)."""
        self._refuse_if_finished("regenerate")
        if self.state is not BattleState.READY:
            raise BadRequest(
                "there is no finished answer to regenerate yet", code="nothing_to_regenerate"
            )
        last = self.turns[-1]
        fresh = replace(last, answers=(), regenerations=last.regenerations + 1)
        return replace(
            self, turns=(*self.turns[:-1], fresh), state=BattleState.STREAMING, updated_at=now
        )

    def flag_identity_leak(self, side: str, term: str, *, now: datetime) -> Battle:
        """An answer named its model (or its maker): the vote will not count for ratings."""
        self._check_side(side)
        leak = IdentityLeak(side=side, term=term)
        if leak in self.leaks:
            return self
        return replace(self, leaks=(*self.leaks, leak), updated_at=now)

    def vote(self, choice: VoteChoice | Feedback | str, *, now: datetime) -> Battle:
        """Record the user's verdict; names are revealed and no further votes are taken."""
        if isinstance(choice, str) and not isinstance(choice, VoteChoice | Feedback):
            choice = parse_vote(self.mode, choice)
        expected = Feedback if self.mode is BattleMode.DIRECT else VoteChoice
        if not isinstance(choice, expected):
            raise BadRequest(
                f"{choice.value!r} is not a valid vote for a {self.mode.value} chat",
                param="vote",
                code="invalid_vote",
            )
        if self.state is BattleState.VOTED:
            raise Conflict("this battle already has a vote", code="already_voted")
        if self.state is BattleState.CLOSED:
            raise Conflict("this battle is closed; start a new round", code="battle_closed")
        if self.state is BattleState.CREATED or not self.turns:
            raise BadRequest("vote after the models have answered", code="vote_before_answer")
        if self.state is BattleState.STREAMING:
            raise BadRequest(
                "wait until every model has finished answering before voting",
                code="vote_while_streaming",
            )
        self._refuse_if_failed()
        return replace(
            self, state=BattleState.VOTED, vote_choice=choice, voted_at=now, updated_at=now
        )

    def close(self, *, now: datetime) -> Battle:
        """Abandon the battle (new round, expiry). A voted battle stays voted."""
        if self.state in (BattleState.VOTED, BattleState.CLOSED):
            return self
        return replace(self, state=BattleState.CLOSED, closed_at=now, updated_at=now)

    def new_round(
        self,
        *,
        now: datetime,
        models: tuple[str, ...] | list[str] | None = None,
        battle_id: str | None = None,
    ) -> NewRound:
        """Close this battle (unless voted) and start a fresh one.

        Named modes keep their models unless others are given; an anonymous battle needs a
        freshly sampled pair, so ``models`` is required there.
        """
        if models is None:
            if self.anonymous:
                raise ValueError("an anonymous new round needs a freshly sampled pair")
            models = self.models
        fresh = Battle.create(
            self.mode, tuple(models), now=now, battle_id=battle_id, max_turns=self.max_turns
        )
        return NewRound(previous=self.close(now=now), current=fresh)

    def outcome(self) -> VoteOutcome:
        """The vote as the store records it (Conflict-free: only after ``vote``)."""
        if self.vote_choice is None or self.voted_at is None:
            raise BadRequest("this battle has no vote yet", code="no_vote")
        winner = self.vote_choice.winner if isinstance(self.vote_choice, VoteChoice) else None
        return VoteOutcome(
            battle_id=self.battle_id,
            mode=self.mode,
            choice=self.vote_choice,
            models=self.models,
            winner=winner,
            anonymous=self.anonymous,
            leaked=self.leaked,
            leak_terms=tuple(leak.term for leak in self.leaks),
            turns=self.complete_turns,
            voted_at=self.voted_at,
            answer_failed=self.answer_failed,
        )

    # ---- views --------------------------------------------------------------------

    def public_view(self) -> dict[str, Any]:
        """What the browser may see now. Anonymous battles name nothing before the vote."""
        view: dict[str, Any] = {
            "battle_id": self.battle_id,
            "mode": self.mode.value,
            "state": self.state.value,
            "max_turns": self.max_turns,
            "turns_left": max(0, self.max_turns - len(self.turns)),
            "can_vote": self.can_vote,
            "can_regenerate": self.can_regenerate,
            "can_continue": self.can_continue,
            "identity_leaked": self.leaked,
            "notice": self._notice(),
            "vision": self.vision,
            "vote": self.vote_choice.value if self.vote_choice is not None else None,
            "sides": [{"side": side, "label": f"Model {side.upper()}"} for side in self.sides],
            "turns": [self._public_turn(t) for t in self.turns],
        }
        if self.revealed:
            view["sides"] = self._named_sides()
        return view

    def revealed_view(self) -> dict[str, Any]:
        """The full view with names (and leak terms, raw errors) — only once revealed."""
        if not self.revealed:
            raise Forbidden("model names are shown after you vote", code="not_revealed")
        view = self.public_view()
        view["leaks"] = [{"side": leak.side, "term": leak.term} for leak in self.leaks]
        for public_turn, turn in zip(view["turns"], self.turns, strict=True):
            for entry in public_turn["answers"]:
                answer = turn.answer(entry["side"])
                entry["error"] = answer.error if answer else None
        return view

    # ---- helpers ------------------------------------------------------------------

    def _notice(self) -> str | None:
        if self.answer_failed and self.state is BattleState.READY:
            return FAILED_BATTLE_NOTICE
        if self.leaked and self.anonymous:
            return LEAK_NOTICE
        return None

    def _named_sides(self) -> list[dict[str, Any]]:
        return [
            {"side": side, "label": f"Model {side.upper()}", "model": model}
            for side, model in zip(self.sides, self.models, strict=True)
        ]

    def _public_turn(self, turn: Turn) -> dict[str, Any]:
        answers = []
        for side in self.sides:
            answer = turn.answer(side)
            if answer is None:
                answers.append({"side": side, "text": None, "pending": True, "failed": False})
                continue
            answers.append(
                {
                    "side": side,
                    # A failed side shows a neutral notice; the raw upstream error might
                    # name the model, so it stays out of the public view.
                    "text": ANSWER_FAILED_NOTICE if answer.failed else answer.text,
                    "pending": False,
                    "failed": answer.failed,
                    # Shown once the names are: "length" hits a model's own token limit,
                    # and upstreams name the rest in words of their own ("end_turn", "eos").
                    "finish_reason": answer.finish_reason if self.revealed else None,
                }
            )
        return {
            "prompt": turn.prompt,
            "image_ids": list(turn.image_ids),
            "regenerations": turn.regenerations,
            "answers": answers,
        }

    def _turn_done(self, turn: Turn) -> bool:
        return all(turn.answer(side) is not None for side in self.sides)

    def _check_side(self, side: str) -> None:
        if side not in self.sides:
            raise BadRequest(f"unknown side {side!r} for a {self.mode.value} chat", param="side")

    def _refuse_if_finished(self, action: str) -> None:
        if self.state is BattleState.VOTED:
            raise Conflict(
                f"cannot {action}: this battle is already voted; start a new round",
                code="already_voted",
            )
        if self.state is BattleState.CLOSED:
            raise Conflict(f"cannot {action}: this battle is closed", code="battle_closed")

    def _refuse_if_failed(self) -> None:
        if self.answer_failed:
            raise BadRequest(FAILED_BATTLE_NOTICE, code="answer_failed")
