"""The life of one battle: turns, answers, regenerate, vote, reveal — as immutable values.

A ``Battle`` is a frozen dataclass; every transition returns a new ``Battle`` and raises a
typed ``arena.errors`` exception when the move is not allowed, so the web layer only stores
what it gets back and maps errors to responses. Nothing here reads a clock or does I/O:
callers pass ``now``. The values it is built from live in ``battle_types``; what a client
may see of it (nothing that names an anonymous battle's models before the vote) in
``battle_views``.

States::

    created ──start_turn──► streaming ──(every side answered)──► ready ──vote──► voted
                               ▲                                   │
                               └──────── start_turn / regenerate ◄─┘
    any state except voted ──close──► closed

Modes:

- ``battle``: two anonymous models; names are revealed only after the vote.
- ``side_by_side``: two named models; votes are recorded but marked non-anonymous.
- ``direct``: one named model; feedback is upvote / downvote / flag.

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
from typing import Any

from arena.battles import battle_views
from arena.battles.battle_types import (
    Answer,
    BattleMode,
    BattleState,
    Feedback,
    IdentityLeak,
    Turn,
    VoteChoice,
    VoteOutcome,
    parse_vote,
)
from arena.battles.battle_views import FAILED_BATTLE_NOTICE
from arena.errors import BadRequest, Conflict

DEFAULT_MAX_TURNS = 10
TEXT_BATTLE_IMAGE_REFUSAL = (
    "This battle was started without an image, so it takes text only. Start a new round "
    "with the image attached."
)


def new_battle_id() -> str:
    """A random, opaque battle id (uuid4-sized hex) that says nothing about the models."""
    return secrets.token_hex(16)


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
                "Send the message without the image, or pick a vision model and start a new "
                "round with the image attached.",
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

    # ---- views (see battle_views) ----------------------------------------------------

    def public_view(self) -> dict[str, Any]:
        """What the browser may see now. Anonymous battles name nothing before the vote."""
        return battle_views.public_view(self)

    def revealed_view(self) -> dict[str, Any]:
        """The full view with names (and leak terms, raw errors) — only once revealed."""
        return battle_views.revealed_view(self)

    # ---- helpers ------------------------------------------------------------------

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
