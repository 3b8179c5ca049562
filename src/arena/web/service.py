"""The arena's use cases behind the web API: create, chat, regenerate, vote, view.

Rules come from ``arena.battles`` (state machine, sampler, limits, moderation, identity
leaks); rows go through ``arena.store.battles_repo`` (synchronous, so it runs in worker
threads). Nothing here sends a model name to a client before the vote: SSE payloads are
built from side labels, rendered answer text and the state machine's public view.

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

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import numpy as np

from arena.battles.battle import (
    FAILED_BATTLE_NOTICE,
    Battle,
    BattleMode,
    BattleState,
    Feedback,
    VoteChoice,
    parse_vote,
)
from arena.battles.identity_leak import IdentityLeakDetector
from arena.battles.limits import ArenaLimits, ArenaRateLimiter, check_input, check_turns
from arena.battles.moderation import Moderator, raise_if_flagged
from arena.battles.pair_sampler import (
    LeaderboardSnapshot,
    PairSampler,
    SamplerConfig,
    check_named_choice,
)
from arena.errors import BadRequest, Conflict, NoHealthyWorker, NotFound
from arena.protocol import ChatCompletionRequest, ChatMessage, ImagePart, ImageURL, TextPart
from arena.providers.base import Provider
from arena.providers.registry import ModelSpec
from arena.store import battles_repo as repo
from arena.store import images as store_images
from arena.store.db import Database
from arena.web import images as image_files
from arena.web.markdown import render_markdown
from arena.web.model_health import ModelHealth
from arena.web.records import StoredBattle, encode_leaks, in_one_transaction, rebuild_battle
from arena.web.streaming import SideOutcome, StreamLimits, stream_sides
from arena.web.turn_frames import (
    answer_frames,
    delta_frame,
    end_frame,
    failure_frame,
    turn_failed_frame,
)
from arena.web.write_queue import MESSAGE, VOTE, PriorityGate

log = logging.getLogger("arena.web")
T = TypeVar("T")

CHOICE_TO_STORE = {
    VoteChoice.A_BETTER: "a",
    VoteChoice.B_BETTER: "b",
    VoteChoice.TIE: "tie",
    VoteChoice.BOTH_BAD: "bothbad",
}
API_TO_CHOICE = {"a": "a_better", "b": "b_better", "tie": "tie", "bothbad": "both_bad"}


def utcnow() -> datetime:
    return datetime.now(UTC)


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))


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
class ArenaService:
    """One per web app. Holds the registry view, the providers and per-process queues."""

    db: Database
    specs: Sequence[ModelSpec]
    providers: dict[str, Provider]
    limits: ArenaLimits
    rate_limiter: ArenaRateLimiter
    moderator: Moderator | None
    data_dir: Path
    image_limits: image_files.ImageLimits
    stream_limits: StreamLimits
    # Database calls in flight at once. The ORM work holds the GIL, so more threads mostly
    # fight each other (and the event loop); fewer keep each call, and so each vote, short.
    db_concurrency: int = 4
    # Called after every committed vote (the live leaderboard asks for a recomputation).
    on_vote: Callable[[], None] | None = None
    # Models in outage get no battles (probed in the background; see model_health).
    health: ModelHealth | None = None
    sampler_config: SamplerConfig = field(default_factory=SamplerConfig)
    # The live leaderboard's uncertainty, for active sampling (see live_snapshot).
    snapshot: Callable[[], LeaderboardSnapshot | None] | None = None
    sampler: PairSampler = field(init=False)
    leak_detector: IdentityLeakDetector = field(init=False)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    # Battles this process is streaming now -> start time (monotonic).
    _in_flight: dict[str, float] = field(default_factory=dict)
    _write_gate: PriorityGate = field(init=False)
    _read_gate: PriorityGate = field(init=False)
    # Uploads decode in threads, a few at a time (see web.images).
    _images: image_files.ImagePreparer = field(init=False)

    def __post_init__(self) -> None:
        self.specs = tuple(self.specs)
        self._by_name = {s.name: s for s in self.specs}
        self.sampler = PairSampler(self.specs, self.sampler_config)
        self.leak_detector = IdentityLeakDetector.from_specs(self.specs)
        self._images = image_files.ImagePreparer(self.image_limits)
        if self.db.is_sqlite:
            # One writer at a time. WAL readers never block each other, but each one holds
            # a thread that fights the event loop for the GIL: a few at a time. A vote
            # reads inside its own write transaction.
            self._write_gate = PriorityGate(1)
            self._read_gate = PriorityGate(self.db_concurrency)
        else:
            # Reads and writes share the connection pool; queue them all, votes first.
            gate = PriorityGate(self.db_concurrency)
            self._write_gate, self._read_gate = gate, gate

    async def _write(
        self, fn: Callable[..., T], *args: Any, priority: int = MESSAGE, **kwargs: Any
    ) -> T:
        """A store write, through the priority queue (votes first)."""
        async with self._write_gate.hold(priority):
            return await in_thread(fn, *args, **kwargs)

    async def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        async with self._read_gate.hold(MESSAGE):
            return await in_thread(fn, *args, **kwargs)

    # ------------------------------------------------------------------ models

    @property
    def stale_after_s(self) -> float:
        return self.stream_limits.total_timeout_s + 30.0

    def unavailable(self) -> frozenset[str]:
        """Models that get no battles now: no provider, or in outage."""
        missing = {s.name for s in self.specs if s.name not in self.providers}
        if self.health is not None:
            missing |= self.health.down
        return frozenset(missing)

    def is_demo(self, name: str) -> bool:
        spec = self._by_name.get(name)
        provider = self.providers.get(name)
        return (spec is not None and spec.provider == "demo") or (
            provider is not None and provider.info.kind == "demo"
        )

    def is_vision(self, name: str) -> bool:
        spec = self._by_name.get(name)
        return spec is not None and spec.is_vision

    def organization(self, name: str) -> str:
        spec = self._by_name.get(name)
        return spec.organization if spec else ""

    def named_models(self) -> list[ModelSpec]:
        """Models a user may pick by name (side by side, direct)."""
        gone = self.unavailable()
        return [
            s
            for s in self.specs
            if s.arena.enabled and not s.arena.anonymous_only and s.name not in gone
        ]

    @property
    def only_demo(self) -> bool:
        live = [s for s in self.specs if s.name in self.providers and s.arena.enabled]
        return all(self.is_demo(s.name) for s in live)

    # ------------------------------------------------------------------ sessions

    async def create_session(self, *, ip_hash: str | None, user_agent: str | None) -> str:
        ua_hash = hashlib.sha256(user_agent.encode()).hexdigest() if user_agent else None
        info = await self._write(
            repo.create_session,
            self.db,
            ttl_s=self.limits.session_ttl_s,
            ip_hash=ip_hash,
            user_agent_hash=ua_hash,
        )
        return info.id

    # ------------------------------------------------------------------ battles

    async def create_battle(
        self,
        *,
        session_id: str,
        ip_hash: str | None,
        mode: str,
        models: list[str] | None,
        vision: bool,
    ) -> Battle:
        await self.rate_limiter.hit_request(session_id=session_id, ip_hash=ip_hash)
        battle_mode = BattleMode(mode)
        if battle_mode is BattleMode.BATTLE:
            if models:
                raise BadRequest(
                    "anonymous battles draw their models; leave out 'models' or use "
                    "mode 'side_by_side'",
                    param="models",
                )
            active = self.sampler_config.mode == "active" and self.snapshot is not None
            pair = self.sampler.sample(
                self.rng,
                unavailable=self.unavailable(),
                vision=vision,
                snapshot=self.snapshot() if active else None,
            )
            chosen: tuple[str, ...] = pair.models
        else:
            picked = check_named_choice(
                self.specs,
                models or [],
                battle_mode,
                unavailable=self.unavailable(),
                vision=vision,
            )
            chosen = tuple(s.name for s in picked)
        try:
            info = await self._write(
                repo.create_battle,
                self.db,
                mode=battle_mode.value,
                model_a=chosen[0],
                model_b=chosen[1] if len(chosen) > 1 else None,
                session_id=session_id,
                vision=vision,
            )
        except NotFound:  # the session row is gone (expired and cleaned up, or a new db)
            raise BadRequest(
                "Your session is no longer valid: reload the page to start a new one.",
                code="session_expired",
            ) from None
        return Battle.create(
            battle_mode,
            chosen,
            now=info.created_at,
            battle_id=info.id,
            max_turns=self.limits.max_turns,
            vision=vision,
        )

    def _in_flight_now(self, battle_id: str) -> bool:
        started = self._in_flight.get(battle_id)
        if started is None:
            return False
        if time.monotonic() - started > self.stale_after_s:
            self._in_flight.pop(battle_id, None)
            return False
        return True

    def _rebuild(
        self, tx: Any, battle_id: str, session_id: str, *, in_flight: bool
    ) -> StoredBattle:
        """The caller's battle, inside a transaction; anyone else's (or an unknown id) is 404."""
        try:
            stored = rebuild_battle(
                tx,
                battle_id,
                max_turns=self.limits.max_turns,
                now=utcnow(),
                in_flight=in_flight,
                stale_after_s=self.stale_after_s,
            )
        except NotFound:
            stored = None
        if stored is None or stored.session_id != session_id:
            raise NotFound("No such battle in this session.", param="battle_id")
        return stored

    async def load(self, battle_id: str, session_id: str) -> StoredBattle:
        """The caller's battle, read in one transaction."""
        in_flight = self._in_flight_now(battle_id)
        return await self._read(
            in_one_transaction,
            self.db,
            lambda tx: self._rebuild(tx, battle_id, session_id, in_flight=in_flight),
            read_only=True,
        )

    def view(self, stored: StoredBattle) -> dict[str, Any]:
        battle = stored.battle
        view = battle.revealed_view() if battle.revealed else battle.public_view()
        for turn in view["turns"]:
            for answer in turn["answers"]:
                text = answer.get("text")
                answer["html"] = render_markdown(text) if text else None
        if battle.revealed:
            for side in view["sides"]:
                side["demo"] = self.is_demo(side["model"])
        return view

    # ------------------------------------------------------------------ turns

    async def _image_parts(self, image_ids: Sequence[str]) -> list[ImagePart]:
        parts = []
        for image_id in image_ids:
            info = await self._read(repo.get_image, self.db, image_id)
            if info is None:
                raise NotFound(
                    "Unknown image id: upload it with POST /api/images first.", param="image_id"
                )
            data = await anyio.Path(store_images.image_path(self.data_dir, info)).read_bytes()
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

    async def plan_turn(
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
        stored = await self.load(battle_id, session_id)
        battle = stored.battle
        if self._in_flight_now(battle_id):
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
                    and all(self.is_vision(m) for m in battle.models)
                )
                image_ids = (image_id,)
            new = battle.start_turn(prompt, now=now, image_ids=image_ids)
            if self.moderator is not None:
                result = await self.moderator.check(prompt)
                if result.flagged:
                    await self._write(
                        repo.update_battle,
                        self.db,
                        battle_id,
                        moderation_flagged=True,
                        moderation_reason=",".join(result.categories) or "flagged",
                    )
                raise_if_flagged(result)
        # An anonymous battle's lost model fails as a side instead (see run_turn): refusing
        # the turn would tell this battle apart from the battles of models still served.
        if not battle.anonymous and any(m not in self.providers for m in battle.models):
            raise NoHealthyWorker(
                "This chat's models are no longer being served; start a new round.",
                code="models_unavailable",
            )
        requests = await self._requests(new)  # 404 for an unknown image id
        if self._in_flight_now(battle_id):  # a twin request got here while we awaited
            raise Conflict(
                "The models are still answering the last message.", code="battle_streaming"
            )
        self._in_flight[battle_id] = time.monotonic()  # released by run_turn or release()
        return TurnPlan(stored, new, regenerate, prompt, image_ids, requests)

    async def _persist_user_turn(self, plan: TurnPlan) -> None:
        messages = [
            repo.NewMessage(
                plan.stored.conversation_ids[side],
                role="user",
                content=plan.prompt,
                image_hashes=plan.image_ids,
            )
            for side in plan.battle.sides
        ]
        await self._write(repo.add_messages, self.db, messages, now=utcnow())

    async def _persist_answers(
        self, plan: TurnPlan, answers: dict[str, tuple[SideOutcome, str | None]], battle: Battle
    ) -> None:
        """Every side's answer (and any identity leak) in one transaction."""
        messages = []
        for side in plan.battle.sides:
            outcome, error = answers[side]
            usage = outcome.usage
            messages.append(
                repo.NewMessage(
                    plan.stored.conversation_ids[side],
                    role="assistant",
                    content=outcome.text,
                    model=plan.battle.model_for(side),
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
            repo.add_messages(db, messages)
            if newly_leaked:
                repo.update_battle(
                    db, battle.battle_id, leaked=True, leak_reason=encode_leaks(battle.leaks)
                )

        await self._write(in_one_transaction, self.db, write)

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
            if self.health is not None and not battle.anonymous:
                # Only named chats: an outage that began with a battle's failure would show
                # in /api/models while that battle is still open (see the module docstring).
                self.health.report_failure(battle.model_for(side), outcome.error_kind)
            frames.append(failure_frame(outcome))
            return battle.record_answer(side, outcome.text, now=now, finish_reason=None, error=raw)
        answers[side] = (outcome, None)
        battle, announced = answer_frames(
            battle, outcome, leak_detector=self.leak_detector, now=now
        )
        frames.extend(announced)
        return battle

    async def run_turn(self, plan: TurnPlan) -> AsyncIterator[bytes]:
        """Stream one turn as SSE bytes and record it; cancellation records what arrived.

        Answers are shown as each side finishes and stored together before ``end``, so a
        vote that follows ``end`` always finds them.
        """
        battle = plan.battle
        battle_id = battle.battle_id
        answers: dict[str, tuple[SideOutcome, str | None]] = {}
        outcomes: dict[str, SideOutcome] = {}
        stored = False
        user_recorded = plan.regenerate
        try:
            if not plan.regenerate:
                await self._persist_user_turn(plan)
                user_recorded = True
            jobs = {
                side: (label(battle, side), self.providers.get(battle.model_for(side)), request)
                for side, request in plan.requests.items()
            }
            async for batch in stream_sides(
                jobs, self.stream_limits, uniform_errors=battle.anonymous
            ):
                frames: list[bytes] = []  # what arrived together goes out in one write
                for event in batch:
                    if event.kind == "delta":
                        frames.append(delta_frame(event.side, event.text))
                        continue
                    outcome = event.outcome
                    assert outcome is not None
                    outcomes[event.side] = outcome
                    battle = self._finish_side(battle, event.kind, outcome, answers, frames)
                yield b"".join(frames)
            await self._persist_answers(plan, answers, battle)
            stored = True
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
                        await self._persist_answers(plan, answers, battle)
                    except Exception:  # the stream is gone; the log must say why
                        log.exception("could not record an interrupted turn")
            self.release(battle_id)

    def release(self, battle_id: str) -> None:
        """The turn of this battle is over (or never started streaming)."""
        self._in_flight.pop(battle_id, None)

    # ------------------------------------------------------------------ votes

    async def vote(
        self, *, battle_id: str, session_id: str, ip_hash: str | None, value: str
    ) -> dict[str, Any]:
        await self.rate_limiter.hit_vote(session_id=session_id, ip_hash=ip_hash)
        in_flight = self._in_flight_now(battle_id)
        now = utcnow()

        def check_and_record(tx: Any) -> tuple[Battle, str, bool]:
            """Read, check and write in one transaction: one trip to a worker thread, and
            no other write between the check and the vote."""
            stored = self._rebuild(tx, battle_id, session_id, in_flight=in_flight)
            battle = stored.battle
            if battle.mode is BattleMode.DIRECT:
                feedback = parse_vote(battle.mode, value)
                assert isinstance(feedback, Feedback)
                if battle.state is not BattleState.READY or "a" not in stored.answer_message_ids:
                    raise BadRequest(
                        "Rate an answer after the model has finished it.",
                        code="vote_before_answer",
                    )
                if battle.answer_failed:
                    raise BadRequest(FAILED_BATTLE_NOTICE, code="answer_failed")
                repo.record_vote(
                    tx,
                    battle_id,
                    feedback.value,
                    session_id=session_id,
                    ip_hash=ip_hash,
                    message_id=stored.answer_message_ids["a"],
                )
                return battle, feedback.value, False
            if in_flight:
                raise BadRequest(
                    "Wait until every model has finished answering before voting.",
                    code="vote_while_streaming",
                )
            choice = parse_vote(battle.mode, API_TO_CHOICE.get(value, value))
            assert isinstance(choice, VoteChoice)
            battle = battle.vote(choice, now=now)
            # Committed before the vote is acknowledged; a racing second vote gets 409.
            repo.record_vote(
                tx,
                battle_id,
                CHOICE_TO_STORE[choice],
                session_id=session_id,
                ip_hash=ip_hash,
                status="voted",
                now=now,
            )
            return battle, CHOICE_TO_STORE[choice], battle.outcome().counts_for_ratings

        battle, store_value, counted = await self._write(
            in_one_transaction, self.db, check_and_record, priority=VOTE
        )
        if counted and self.on_vote is not None:
            self.on_vote()
        return {
            "battle_id": battle_id,
            "vote": store_value,
            "counted": counted,
            "leaked": battle.leaked,
            "models": {
                side: {
                    "name": battle.model_for(side),
                    "demo": self.is_demo(battle.model_for(side)),
                    "organization": self.organization(battle.model_for(side)),
                }
                for side in battle.sides
            },
        }

    # ------------------------------------------------------------------ images

    async def save_image(self, data: bytes) -> image_files.PreparedImage:
        """Check and shrink here (clear messages, size limits), then let the store write
        the bytes under the data dir by content hash and record them."""
        prepared = await self._images.prepare(data)
        await self._write(
            store_images.store_image_bytes,
            self.db,
            self.data_dir,
            prepared.data,
            max_bytes=self.image_limits.max_bytes,
            max_pixels=self.image_limits.max_pixels,
        )
        return prepared
