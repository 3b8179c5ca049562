"""One turn of a red-team round, streamed as server-sent events and then stored.

Events, in order: ``delta`` (``{"text"}``, the model's answer as it streams), then either
``error`` (the model could not answer: one fixed kind and message whatever went wrong, so a
failure says nothing about which model it was; the turn is not counted) or ``checked``
(``{"success", "method"}``), for a judge goal ``judge`` (``{"status", "achieved",
"explanation"}``), then ``round`` (the round view: the model's name once the round is over),
then ``done``.

Success is checked on the answer as it grows: a target phrase or a leaked canary ends the
round at once, the model's stream is closed, and the turn is stored with what it said so far.
A client that leaves once the model has said something still uses the turn (stored with
what streamed, unjudged), so closing the connection buys no free look at an answer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from pydantic import TypeAdapter

from arena.errors import BadRequest
from arena.pipeline.taggers.prompt_hash import prompt_hash
from arena.protocol import ChatCompletionRequest
from arena.providers.base import Provider
from arena.redteam import CanaryDetector, Challenge, Detection, StreamingCheck, detector_for
from arena.redteam.challenges import JudgeGoalChallenge
from arena.store import redteam_rounds as store_rounds
from arena.store.redteam_rounds import RoundRecord, TurnResult
from arena.web.redteam_game import HIDDEN_MODEL_LABEL, RedTeamGame, round_view
from arena.web.streaming import ANONYMOUS_FAILURE_KIND, StreamLimits, sse, stream_sides

log = logging.getLogger("arena.web.redteam")
_CHALLENGE = TypeAdapter(Challenge)
# Time a judge may take on top of the answer before the claim on the round lapses.
JUDGE_ALLOWANCE_S = 180.0
FAILED = "The model could not answer, so this turn does not count. Send your message again."


def stored_challenge_model(record: RoundRecord) -> Any:
    doc = {k: v for k, v in record.challenge.items() if k not in ("public", "canary")}
    return _CHALLENGE.validate_python(doc)


@dataclass
class TurnPlan:
    record: RoundRecord  # as claimed: its turns so far, before this one
    text: str
    challenge: Any
    provider: Provider | None


@dataclass
class _TurnState:
    """What a turn has produced so far."""

    started: datetime
    check: StreamingCheck | None
    parts: list[str] = field(default_factory=list)
    first_token: datetime | None = None
    finish_reason: str | None = None
    failed: bool = False
    found: Detection | None = None

    @property
    def answer(self) -> str:
        return "".join(self.parts)


def _now() -> datetime:
    return datetime.now(UTC)


def _messages(plan: TurnPlan) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if plan.record.system_prompt:
        messages.append({"role": "system", "content": plan.record.system_prompt})
    for turn in plan.record.history:
        messages.append({"role": "user", "content": turn.prompt})
        messages.append({"role": "assistant", "content": turn.answer})
    messages.append({"role": "user", "content": plan.text})
    return messages


def _detector(plan: TurnPlan) -> StreamingCheck | None:
    if isinstance(plan.challenge, JudgeGoalChallenge):
        return None
    if plan.challenge.kind == "leak_secret":
        return StreamingCheck(CanaryDetector(plan.record.secret_core or ""))
    return StreamingCheck(detector_for(plan.challenge))


class RedTeamTurns:
    """Plans (claims the round) and runs turns."""

    def __init__(self, game: RedTeamGame, limits: StreamLimits, max_input_chars: int) -> None:
        self.game = game
        self.limits = limits
        self.max_input_chars = max_input_chars

    async def plan(self, round_id: str, session_id: str, text: str) -> TurnPlan:
        if not text.strip():
            raise BadRequest("Write a message first.", param="text", code="empty_message")
        if len(text) > self.max_input_chars:
            raise BadRequest(
                f"The message is longer than {self.max_input_chars} characters.",
                param="text",
                code="message_too_long",
            )
        store = self.game.store
        record = await store.write(
            store_rounds.claim_turn,
            store.db,
            round_id,
            self.game.player_id(session_id),
            hold_s=self.limits.total_timeout_s + JUDGE_ALLOWANCE_S,
        )
        return TurnPlan(
            record=record,
            text=text,
            challenge=stored_challenge_model(record),
            provider=self.game.providers.get(record.model),
        )

    async def _release(self, round_id: str) -> None:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                await self.game.store.write(store_rounds.release_turn, self.game.store.db, round_id)

    async def _save(self, plan: TurnPlan, state: _TurnState, judge: Any) -> RoundRecord:
        """Store the turn (shielded: a client leaving now must not lose it)."""
        found = state.found
        method = None
        if found is not None and found.found:
            method = found.method or "detected"
        elif judge is not None and judge.get("achieved"):
            method = "judge"
        prompts = [t.prompt for t in plan.record.history] + [plan.text]
        result = TurnResult(
            prompt=plan.text,
            prompt_hash=prompt_hash([plan.text]),
            answer=state.answer,
            finish_reason=state.finish_reason,
            detection=(
                None
                if found is None
                else {"found": found.found, "method": found.method, "score": found.score}
            ),
            judge=judge,
            started_at=state.started,
            first_token_at=state.first_token,
            finished_at=_now(),
            success_method=method,
            attack_hash=prompt_hash(prompts) if method else None,
        )
        store = self.game.store
        with anyio.CancelScope(shield=True):
            return await store.write(store_rounds.record_turn, store.db, plan.record.id, result)

    async def _left_early(self, plan: TurnPlan, state: _TurnState) -> None:
        """The client left (or the request was cancelled) before the turn was stored. Once the
        model has said something the turn counts, checked on what it said, unjudged: leaving
        must not buy a free look at an answer. With nothing said, the round is released."""
        if not state.parts or state.failed:
            await self._release(plan.record.id)
            return
        if state.check is not None and not (state.found and state.found.found):
            state.found = state.check.finish(state.answer)
        try:
            await self._save(plan, state, judge=None)
        except Exception:
            log.exception("red team: could not store the turn of a client that left")
            await self._release(plan.record.id)

    async def _stream(self, plan: TurnPlan, state: _TurnState) -> AsyncIterator[bytes]:
        """The model's answer as ``delta`` events, checked as it grows; stops at a hit or a
        failure (closing the model's stream)."""
        record = plan.record
        request = ChatCompletionRequest(model=record.model, messages=_messages(plan), stream=True)
        jobs = {"a": (HIDDEN_MODEL_LABEL, plan.provider, request)}
        check = state.check
        async with contextlib.aclosing(
            stream_sides(jobs, self.limits, uniform_errors=True)
        ) as events:
            async for batch in events:
                for event in batch:
                    if event.kind == "delta":
                        state.first_token = state.first_token or _now()
                        state.parts.append(event.text)
                        yield sse("delta", {"text": event.text})
                        if check is not None and check.feed(state.answer).found:
                            state.found = check.result
                    elif event.kind == "error":
                        state.failed = True
                        # One kind and message for every failure of every model.
                        yield sse("error", {"kind": ANONYMOUS_FAILURE_KIND, "message": FAILED})
                    elif event.kind == "done" and event.outcome is not None:
                        state.finish_reason = event.outcome.finish_reason
                if (state.found is not None and state.found.found) or state.failed:
                    return

    async def run(self, plan: TurnPlan) -> AsyncIterator[bytes]:
        state = _TurnState(started=_now(), check=_detector(plan))
        stored = False
        try:
            # aclosing: a client leaving closes the model's stream now, not at collection.
            async with contextlib.aclosing(self._stream(plan, state)) as frames:
                async for frame in frames:
                    yield frame
            hit = state.found is not None and state.found.found
            if state.failed and not hit:
                return  # not counted; the round is released below
            judge = None
            if state.check is not None:
                if not hit:
                    state.found = state.check.finish(state.answer)
                found = state.found
                yield sse("checked", {"success": found.found, "method": found.method or None})
            else:
                verdict = await self._judge(plan, state.answer)
                judge = verdict.to_json()
                shown = ("status", "achieved", "explanation")
                yield sse("judge", {k: judge[k] for k in shown})
            updated = await self._save(plan, state, judge)
            stored = True
            yield sse("round", round_view(updated))
            yield sse("done", {})
        finally:
            if not stored:
                await self._left_early(plan, state)

    async def _judge(self, plan: TurnPlan, answer: str) -> Any:
        from arena.redteam.judge_goals import GoalJudge

        conversation = [(t.prompt, t.answer) for t in plan.record.history]
        conversation.append((plan.text, answer))
        judge = GoalJudge(self.game.judge_for(plan.challenge))
        return await judge.decide(plan.challenge, conversation)
