"""One turn of a red-team round, streamed as server-sent events and then stored.

Events, in order: ``delta`` (``{"text"}``, the model's answer as it streams), then either
``error`` (the model could not answer: one fixed kind and message whatever went wrong, so a
failure says nothing about which model it was; the turn is not counted) or ``checked``
(``{"success", "method"}``), for a judge goal ``judge`` (``{"status", "achieved",
"explanation"}``), then ``round`` (the round view: the model's name once the round is over),
then ``done``.

Success is checked on the answer as it grows: a target phrase or a leaked canary ends the
round at once, the model's stream is closed, and the turn is stored with what it said so far.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from pydantic import TypeAdapter

from arena.errors import BadRequest
from arena.pipeline.taggers.prompt_hash import prompt_hash
from arena.protocol import ChatCompletionRequest
from arena.providers.base import Provider
from arena.redteam import CanaryDetector, Challenge, StreamingCheck, detector_for
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

    async def run(self, plan: TurnPlan) -> AsyncIterator[bytes]:
        record = plan.record
        request = ChatCompletionRequest(model=record.model, messages=_messages(plan), stream=True)
        check = _detector(plan)
        started, first_token = _now(), None
        parts: list[str] = []
        finish_reason: str | None = None
        failed = False
        stored = False
        found = None
        try:
            jobs = {"a": (HIDDEN_MODEL_LABEL, plan.provider, request)}
            async with contextlib.aclosing(
                stream_sides(jobs, self.limits, uniform_errors=True)
            ) as events:
                async for batch in events:
                    for event in batch:
                        if event.kind == "delta":
                            first_token = first_token or _now()
                            parts.append(event.text)
                            yield sse("delta", {"text": event.text})
                            if check is not None and check.feed("".join(parts)).found:
                                found = check.result
                        elif event.kind == "error":
                            failed = True
                            # One kind and message for every failure of every model.
                            yield sse("error", {"kind": ANONYMOUS_FAILURE_KIND, "message": FAILED})
                        elif event.kind == "done" and event.outcome is not None:
                            finish_reason = event.outcome.finish_reason
                    if found is not None or failed:
                        break  # closing the stream cancels the model's answer
            answer = "".join(parts)
            if failed and found is None:
                return  # not counted; the finally releases the round
            if check is not None and found is None:
                found = check.finish(answer)
            detection = None
            judge = None
            method = None
            if check is not None:
                detection = {"found": found.found, "method": found.method, "score": found.score}
                yield sse("checked", {"success": found.found, "method": found.method or None})
                method = (found.method or "detected") if found.found else None
            else:
                verdict = await self._judge(plan, answer)
                judge = verdict.to_json()
                yield sse(
                    "judge",
                    {
                        "status": verdict.status,
                        "achieved": verdict.achieved,
                        "explanation": verdict.explanation,
                    },
                )
                method = "judge" if verdict.achieved else None
            prompts = [t.prompt for t in record.history] + [plan.text]
            result = TurnResult(
                prompt=plan.text,
                prompt_hash=prompt_hash([plan.text]),
                answer=answer,
                finish_reason=finish_reason,
                detection=detection,
                judge=judge,
                started_at=started,
                first_token_at=first_token,
                finished_at=_now(),
                success_method=method,
                attack_hash=prompt_hash(prompts) if method else None,
            )
            store = self.game.store
            with anyio.CancelScope(shield=True):
                updated = await store.write(store_rounds.record_turn, store.db, record.id, result)
            stored = True
            yield sse("round", round_view(updated))
            yield sse("done", {})
        finally:
            if not stored:
                await self._release(record.id)

    async def _judge(self, plan: TurnPlan, answer: str) -> Any:
        from arena.redteam.judge_goals import GoalJudge

        conversation = [(t.prompt, t.answer) for t in plan.record.history]
        conversation.append((plan.text, answer))
        judge = GoalJudge(self.game.judge_for(plan.challenge))
        return await judge.decide(plan.challenge, conversation)
