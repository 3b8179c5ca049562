"""One turn of a chat, from request to stored answers: ``plan`` checks it (every 4xx is
raised before a byte streams), ``run`` streams the sides as SSE and stores what they
answered, even when the client goes away.

Beyond names, nothing a client of an anonymous battle can observe before the vote depends
on which models were drawn, other than the models' own answers (their words, their pace,
whether they failed):

- a failed side reads the same whatever failed and how (``streaming.anonymous_error``),
  and it changes no availability state: outages come from the background probes alone,
  on their own schedule, so ``/api/models`` and the sampler never move because of a
  battle (named chats, which show their models anyway, still report failures at once);
- a model whose provider is gone fails like any other side instead of refusing the turn;
- images are taken or refused by the battle's declared kind, never by the drawn models;
- the frames that announce answers say nothing more than the answers (``turn_frames``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from arena.battles.battle import Battle
from arena.battles.battle_types import BattleMode
from arena.battles.identity_leak import IdentityLeakDetector
from arena.battles.limits import ArenaLimits, ArenaRateLimiter, check_input, check_turns
from arena.battles.moderation import Moderator, raise_if_flagged
from arena.errors import Conflict, NoHealthyWorker, NotFound
from arena.protocol import ChatCompletionRequest, ChatMessage, ImagePart, ImageURL, TextPart
from arena.providers.router import noting_choice
from arena.store import battles as store_battles
from arena.store import conversations as store_conversations
from arena.store import image_records as store_image_records
from arena.store import images as store_images
from arena.web import images as image_files
from arena.web.battle_access import BattleAccess, utcnow
from arena.web.model_catalog import ModelCatalog
from arena.web.records import StoredBattle, encode_leaks, in_one_transaction
from arena.web.store_calls import StoreCalls
from arena.web.streaming import SideOutcome, StreamLimits, stream_sides
from arena.web.turn_frames import (
    LiveMarkdown,
    answer_frames,
    delta_frame,
    end_frame,
    failure_frame,
    turn_failed_frame,
)

log = logging.getLogger("arena.web")


def _utc(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


def label(battle: Battle, side: str) -> str:
    if battle.mode is BattleMode.DIRECT:
        return "The model"
    return f"Model {side.upper()}"


@dataclass(frozen=True, slots=True)
class TurnPlan:
    """A validated turn, ready to stream. Building it raised every 4xx there is."""

    stored: StoredBattle
    battle: Battle  # after start_turn / regenerate
    regenerate: bool
    prompt: str
    image_ids: tuple[str, ...]
    requests: dict[str, ChatCompletionRequest]


@dataclass
class TurnPipeline:
    store: StoreCalls
    battles: BattleAccess
    models: ModelCatalog
    limits: ArenaLimits
    rate_limiter: ArenaRateLimiter
    moderator: Moderator | None
    leak_detector: IdentityLeakDetector
    stream_limits: StreamLimits
    data_dir: Path

    async def _image_parts(self, image_ids: Sequence[str]) -> list[ImagePart]:
        parts = []
        for image_id in image_ids:
            info = await self.store.read(store_image_records.get_image, self.store.db, image_id)
            if info is None:
                raise NotFound(
                    "Unknown image id: upload it with POST /api/images first.", param="image_id"
                )
            data = await anyio.to_thread.run_sync(
                store_images.read_image_bytes, self.data_dir, info
            )
            url = image_files.data_url(data, info.mime_type)
            parts.append(ImagePart(image_url=ImageURL(url=url)))
        return parts

    async def _requests(self, battle: Battle) -> dict[str, ChatCompletionRequest]:
        """Each side's chat history up to the newest turn (whose answers are pending)."""
        image_cache: dict[str, ImagePart] = {}
        for turn in battle.turns:
            for image_id in turn.image_ids:
                if image_id not in image_cache:
                    (image_cache[image_id],) = await self._image_parts([image_id])
        requests = {}
        for side in battle.sides:
            messages: list[ChatMessage] = []
            for turn in battle.turns:
                if turn.image_ids:
                    content: Any = [TextPart(text=turn.prompt)] + [
                        image_cache[i] for i in turn.image_ids
                    ]
                else:
                    content = turn.prompt
                messages.append(ChatMessage(role="user", content=content))
                answer = turn.answer(side)
                if answer is not None and not answer.failed and answer.text:
                    messages.append(ChatMessage(role="assistant", content=answer.text))
            requests[side] = ChatCompletionRequest(
                model=battle.model_for(side), messages=messages, stream=True
            )
        return requests

    async def plan(
        self,
        *,
        battle_id: str,
        session_id: str,
        ip_hash: str | None,
        text: str | None,
        image_id: str | None,
        regenerate: bool,
    ) -> TurnPlan:
        """Every check of a new message or regenerate; raises the 4xx errors."""
        await self.rate_limiter.hit_request(session_id=session_id, ip_hash=ip_hash)
        stored = await self.battles.load(battle_id, session_id)
        battle = stored.battle
        if self.battles.streaming(battle_id):
            raise Conflict(
                "The models are still answering the last message.", code="battle_streaming"
            )
        now = utcnow()
        image_ids: tuple[str, ...] = ()
        if regenerate:
            new = battle.regenerate(now=now)
            prompt = new.turns[-1].prompt
            image_ids = new.turns[-1].image_ids
        else:
            prompt = text or ""
            check_input(prompt, self.limits)
            check_turns(len(battle.turns), self.limits)
            if image_id is not None:
                # Anonymous: the declared kind decides; is_vision is only asked of named chats.
                battle.check_images(
                    models_see_images=not battle.anonymous
                    and all(self.models.is_vision(m) for m in battle.models)
                )
                image_ids = (image_id,)
            new = battle.start_turn(prompt, now=now, image_ids=image_ids)
            if self.moderator is not None:
                result = await self.moderator.check(prompt)
                if result.flagged:
                    await self.store.write(
                        store_battles.update_battle,
                        self.store.db,
                        battle_id,
                        moderation_flagged=True,
                        moderation_reason=",".join(result.categories) or "flagged",
                    )
                raise_if_flagged(result)
        # An anonymous battle's lost model fails as a side instead (see run): refusing
        # the turn would tell this battle apart from the battles of models still served.
        if not battle.anonymous and any(m not in self.models.providers for m in battle.models):
            raise NoHealthyWorker(
                "This chat's models are no longer being served; start a new round.",
                code="models_unavailable",
            )
        requests = await self._requests(new)  # 404 for an unknown image id
        # 409 when any process (this or another replica) streams this battle's turn.
        await self.battles.begin_turn(battle_id)  # released by run or BattleAccess.release
        return TurnPlan(stored, new, regenerate, prompt, image_ids, requests)

    async def _persist_user_turn(self, plan: TurnPlan) -> None:
        messages = [
            store_conversations.NewMessage(
                plan.stored.conversation_ids[side],
                role="user",
                content=plan.prompt,
                image_hashes=plan.image_ids,
            )
            for side in plan.battle.sides
        ]
        await self.store.write(
            store_conversations.add_messages, self.store.db, messages, now=utcnow()
        )

    async def _persist_answers(
        self,
        plan: TurnPlan,
        answers: dict[str, tuple[SideOutcome, str | None]],
        battle: Battle,
        routed: dict[str, str] | None = None,
    ) -> None:
        """Every side's answer (and any identity leak) in one transaction; ``routed``: the
        model a router side's router chose, kept in the message's params (never streamed)."""
        messages = []
        for side in plan.battle.sides:
            outcome, error = answers[side]
            usage = outcome.usage
            messages.append(
                store_conversations.NewMessage(
                    plan.stored.conversation_ids[side],
                    role="assistant",
                    content=outcome.text,
                    model=plan.battle.model_for(side),
                    params={"routed_model": routed[side]} if routed and side in routed else None,
                    started_at=_utc(outcome.started_at),
                    finished_at=_utc(outcome.finished_at or time.time()),
                    prompt_tokens=usage.prompt_tokens if usage else None,
                    completion_tokens=usage.completion_tokens if usage else None,
                    finish_reason=outcome.finish_reason,
                    error=error,
                )
            )
        newly_leaked = battle.leaked and not plan.stored.battle.leaked

        def write(db: Any) -> None:
            store_conversations.add_messages(db, messages)
            if newly_leaked:
                store_battles.update_battle(
                    db, battle.battle_id, leaked=True, leak_reason=encode_leaks(battle.leaks)
                )

        await self.store.write(in_one_transaction, self.store.db, write)

    def _finish_side(
        self,
        battle: Battle,
        kind: str,
        outcome: SideOutcome,
        answers: dict[str, tuple[SideOutcome, str | None]],
        frames: list[bytes],
    ) -> Battle:
        """Record one side's finished (or failed) answer; add the frames that announce it."""
        side = outcome.side
        now = utcnow()
        if kind == "error":
            raw = outcome.raw_error or outcome.error
            answers[side] = (outcome, raw)
            if self.models.health is not None and not battle.anonymous:
                # Only named chats: an outage that began with a battle's failure would show
                # in /api/models while that battle is still open (see the module docstring).
                self.models.health.report_failure(battle.model_for(side), outcome.error_kind)
            frames.append(failure_frame(outcome))
            return battle.record_answer(side, outcome.text, now=now, finish_reason=None, error=raw)
        answers[side] = (outcome, None)
        battle, announced = answer_frames(
            battle, outcome, leak_detector=self.leak_detector, now=now
        )
        frames.extend(announced)
        return battle

    async def run(self, plan: TurnPlan) -> AsyncIterator[bytes]:
        """Stream one turn as SSE bytes and record it; cancellation records what arrived.

        Answers are shown as each side finishes and stored together before ``end``, so a
        vote that follows ``end`` always finds them.
        """
        battle = plan.battle
        battle_id = battle.battle_id
        answers: dict[str, tuple[SideOutcome, str | None]] = {}
        outcomes: dict[str, SideOutcome] = {}
        routed: dict[str, str] = {}  # side -> the target a router side's router chose
        stored = False
        user_recorded = plan.regenerate
        try:
            if not plan.regenerate:
                await self._persist_user_turn(plan)
                user_recorded = True
            jobs = {
                side: (
                    label(battle, side),
                    noting_choice(self.models.providers.get(battle.model_for(side)), routed, side),
                    request,
                )
                for side, request in plan.requests.items()
            }
            live = LiveMarkdown()  # markdown rendered while it streams (turn_frames)
            async for batch in stream_sides(
                jobs,
                self.stream_limits,
                uniform_errors=battle.anonymous,
                tick_s=live.min_interval_s / 2,
            ):
                frames: list[bytes] = []  # what arrived together goes out in one write
                for event in batch:
                    if event.kind == "delta":
                        frames.append(delta_frame(event.side, event.text))
                        live.add(event.side, event.text)
                        continue
                    outcome = event.outcome
                    assert outcome is not None
                    outcomes[event.side] = outcome
                    live.finish(event.side)
                    battle = self._finish_side(battle, event.kind, outcome, answers, frames)
                frames.extend(await live.due_frames())  # after the deltas they render
                if frames:
                    yield b"".join(frames)
            await self._persist_answers(plan, answers, battle, routed)
            stored = True
            # The lease goes before ``end``: a next message right after it, on any replica,
            # must not find the battle still streaming.
            await self.battles.end_turn(battle_id)
            yield end_frame(battle)
        except Exception:  # the stream has begun: say so in-band, never with a name
            log.exception("arena turn failed after streaming began (battle %s)", battle_id)
            yield turn_failed_frame()
            yield end_frame(battle, can_vote=False)
        finally:
            if not stored and user_recorded:
                for side in battle.sides:
                    if side not in answers:
                        outcome = outcomes.get(side) or SideOutcome(side)
                        answers[side] = (outcome, "interrupted: the turn did not finish")
                with anyio.CancelScope(shield=True):
                    try:
                        await self._persist_answers(plan, answers, battle, routed)
                    except Exception:  # the stream is gone; the log must say why
                        log.exception("could not record an interrupted turn")
            self.battles.release(battle_id)
