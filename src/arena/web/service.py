"""The arena's use cases behind the web API: sessions, models, battles, turns, votes, images.

``ArenaService`` is the one object the routes call; it draws or checks a battle's models
and hands the rest to its parts: ``model_catalog`` (which models may battle),
``battle_access`` (a caller's battles, and which are streaming), ``turn_pipeline`` (plan,
stream and store a turn), ``votes`` and ``store_calls`` (the store, off the event loop).
Rules come from ``arena.battles``; rows go through ``arena.store``.

Nothing a client of an anonymous battle can observe before the vote depends on which
models were drawn, other than the models' own answers: a new battle answers with the
state machine's public view, and ``turn_pipeline`` says how a turn keeps to that.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from arena.battles.battle import Battle
from arena.battles.battle_types import BattleMode
from arena.battles.identity_leak import IdentityLeakDetector
from arena.battles.limits import ArenaLimits, ArenaRateLimiter
from arena.battles.moderation import Moderator
from arena.battles.pair_sampler import (
    LeaderboardSnapshot,
    PairSampler,
    SamplerConfig,
    check_named_choice,
)
from arena.errors import BadRequest, NotFound
from arena.providers.base import Provider
from arena.providers.registry import ModelSpec
from arena.store import battles as store_battles
from arena.store import images as store_images
from arena.store import sessions as store_sessions
from arena.store.db import Database
from arena.web import images as image_files
from arena.web.battle_access import BattleAccess
from arena.web.markdown import render_markdown
from arena.web.model_catalog import ModelCatalog
from arena.web.model_health import ModelHealth
from arena.web.records import StoredBattle
from arena.web.store_calls import StoreCalls
from arena.web.streaming import StreamLimits
from arena.web.turn_pipeline import TurnPipeline, TurnPlan
from arena.web.votes import VoteRecorder


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
    sampler_config: SamplerConfig = field(default_factory=SamplerConfig)
    # The live leaderboard's uncertainty, for active sampling (see live_snapshot).
    snapshot: Callable[[], LeaderboardSnapshot | None] | None = None
    sampler: PairSampler = field(init=False)
    leak_detector: IdentityLeakDetector = field(init=False)
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    models: ModelCatalog = field(init=False)
    store: StoreCalls = field(init=False)
    battles: BattleAccess = field(init=False)
    turns: TurnPipeline = field(init=False)
    votes: VoteRecorder = field(init=False)
    # Uploads decode in threads, a few at a time (see web.images).
    _images: image_files.ImagePreparer = field(init=False)

    def __post_init__(self) -> None:
        self.specs = tuple(self.specs)
        self.sampler = PairSampler(self.specs, self.sampler_config)
        self.leak_detector = IdentityLeakDetector.from_specs(self.specs)
        self._images = image_files.ImagePreparer(self.image_limits)
        self.models = ModelCatalog(self.specs, self.providers)
        self.store = StoreCalls(self.db, concurrency=self.db_concurrency)
        self.battles = BattleAccess(
            self.store,
            max_turns=self.limits.max_turns,
            stale_after_s=self.stream_limits.total_timeout_s + 30.0,
        )
        self.turns = TurnPipeline(
            store=self.store,
            battles=self.battles,
            models=self.models,
            limits=self.limits,
            rate_limiter=self.rate_limiter,
            moderator=self.moderator,
            leak_detector=self.leak_detector,
            stream_limits=self.stream_limits,
            data_dir=self.data_dir,
        )
        self.votes = VoteRecorder(self.store, self.battles, self.models, self.rate_limiter)

    # ------------------------------------------------------------------ models

    @property
    def health(self) -> ModelHealth | None:
        """Background probes of the models; those in outage get no battles."""
        return self.models.health

    @health.setter
    def health(self, health: ModelHealth | None) -> None:
        self.models.health = health

    def is_demo(self, name: str) -> bool:
        return self.models.is_demo(name)

    def named_models(self) -> list[ModelSpec]:
        return self.models.named_models()

    @property
    def only_demo(self) -> bool:
        return self.models.only_demo

    # ------------------------------------------------------------------ sessions

    async def create_session(self, *, ip_hash: str | None, user_agent: str | None) -> str:
        ua_hash = hashlib.sha256(user_agent.encode()).hexdigest() if user_agent else None
        info = await self.store.write(
            store_sessions.create_session,
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
                unavailable=self.models.unavailable(),
                vision=vision,
                snapshot=self.snapshot() if active else None,
            )
            chosen: tuple[str, ...] = pair.models
        else:
            picked = check_named_choice(
                self.specs,
                models or [],
                battle_mode,
                unavailable=self.models.unavailable(),
                vision=vision,
            )
            chosen = tuple(s.name for s in picked)
        try:
            info = await self.store.write(
                store_battles.create_battle,
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

    async def load(self, battle_id: str, session_id: str) -> StoredBattle:
        """The caller's battle, read in one transaction."""
        return await self.battles.load(battle_id, session_id)

    def view(self, stored: StoredBattle) -> dict[str, Any]:
        battle = stored.battle
        view = battle.revealed_view() if battle.revealed else battle.public_view()
        for turn in view["turns"]:
            for answer in turn["answers"]:
                text = answer.get("text")
                answer["html"] = render_markdown(text) if text else None
        if battle.revealed:
            for side in view["sides"]:
                side["demo"] = self.models.is_demo(side["model"])
        return view

    # ------------------------------------------------------------------ turns

    async def plan_turn(self, **turn: Any) -> TurnPlan:
        """Every check of a new message or regenerate (``TurnPipeline.plan``'s keywords)."""
        return await self.turns.plan(**turn)

    def run_turn(self, plan: TurnPlan) -> AsyncIterator[bytes]:
        """Stream one turn as SSE bytes and record it (see ``TurnPipeline.run``)."""
        return self.turns.run(plan)

    def release(self, battle_id: str) -> None:
        """The turn of this battle is over (or never started streaming)."""
        self.battles.release(battle_id)

    # ------------------------------------------------------------------ votes

    async def vote(
        self, *, battle_id: str, session_id: str, ip_hash: str | None, value: str
    ) -> dict[str, Any]:
        return await self.votes.record(
            battle_id=battle_id,
            session_id=session_id,
            ip_hash=ip_hash,
            value=value,
            on_counted=self.on_vote,
        )

    # ------------------------------------------------------------------ images

    async def save_image(self, data: bytes) -> image_files.PreparedImage:
        """Check and shrink here (clear messages, size limits), then let the store write
        the bytes under the data dir by content hash and record them."""
        prepared = await self._images.prepare(data)
        await self.store.write(
            store_images.store_image_bytes,
            self.db,
            self.data_dir,
            prepared.data,
            max_bytes=self.image_limits.max_bytes,
            max_pixels=self.image_limits.max_pixels,
        )
        return prepared
