"""The red-team game behind ``/api/redteam``: challenges, rounds, nicknames.

A round draws one anonymous model among those its challenge allows, the way anonymous
battles draw theirs (enabled, healthy, weighted by the registry's ``sampling_weight``), and
names it only once the round is over. What a client sees before that (the round view, errors,
refusals) is built from the challenge and the round's counters alone; see ``redteam_turns``
for how a turn keeps to the same rule.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from arena.battles.pair_sampler import eligible_for_battle
from arena.errors import BadRequest, NoHealthyWorker, NotFound
from arena.providers.base import Provider
from arena.providers.registry import ModelSpec
from arena.redteam import ChallengeFileError, ChallengeSet, LeakSecretChallenge
from arena.redteam.challenges import JudgeGoalChallenge, SayPhraseChallenge
from arena.store import redteam_players as store_players
from arena.store import redteam_rounds as store_rounds
from arena.store.redteam_rounds import RoundRecord
from arena.web.markdown import render_markdown
from arena.web.model_catalog import ModelCatalog
from arena.web.store_calls import StoreCalls

log = logging.getLogger("arena.web.redteam")

NICKNAME = re.compile(r"^[\w][\w .'-]{1,30}[\w.]$")
# Shown in place of the model's name until the round is over.
HIDDEN_MODEL_LABEL = "The model"


def check_challenge_models(challenges: ChallengeSet, specs: Sequence[ModelSpec]) -> None:
    """Every model a challenge names must be in the registry (else the file is wrong)."""
    known = {s.name for s in specs}
    problems = [
        f"challenge {c.id}: model {m!r} is not in the model registry"
        for c in challenges.challenges
        for m in c.models
        if m not in known
    ]
    if problems:
        raise ChallengeFileError("; ".join(problems))


def public_challenge(challenge: Any) -> dict[str, Any]:
    """What a player is told about a challenge: never its system prompt or its models."""
    out: dict[str, Any] = {
        "id": challenge.id,
        "kind": challenge.kind,
        "title": challenge.title or challenge.id,
        "description": challenge.description,
        "time_limit_s": challenge.time_limit_s,
        "turn_limit": challenge.turn_limit,
        "model_count": len(challenge.models),
    }
    if isinstance(challenge, SayPhraseChallenge):
        out["phrase"] = challenge.phrase
        out["match"] = challenge.match
        out["threshold"] = challenge.fuzzy_threshold if challenge.match == "fuzzy" else None
    elif isinstance(challenge, LeakSecretChallenge):
        out["secret_kind"] = challenge.secret
    elif isinstance(challenge, JudgeGoalChallenge):
        out["goal"] = challenge.goal
        out["rubric"] = challenge.rubric
    return out


def clean_nickname(raw: str) -> str:
    """A nickname as stored: NFKC, inner spaces collapsed, 3-32 word characters and . ' -"""
    nickname = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not NICKNAME.match(nickname):
        raise BadRequest(
            "A nickname is 3 to 32 letters, digits, spaces, dots, dashes or apostrophes, "
            "starting with a letter or digit.",
            param="nickname",
            code="invalid_nickname",
        )
    return nickname


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def round_view(record: RoundRecord, *, now: datetime | None = None) -> dict[str, Any]:
    """The round as its player may see it: the model and the planted secret only once over."""
    now = now or datetime.now(UTC)
    challenge = dict(record.challenge.get("public") or {})
    ended = record.ended
    seconds_left = 0.0 if ended else max(0.0, (record.deadline_at - now).total_seconds())
    turns = []
    for t in record.history:
        detection = t.detection or {}
        judge = t.judge or None
        turns.append(
            {
                "turn": t.turn,
                "prompt": t.prompt,
                "answer": t.answer,
                "answer_html": render_markdown(t.answer) if t.answer else "",
                "success": bool(detection.get("found")) or bool(judge and judge.get("achieved")),
                "method": detection.get("method") or None,
                "judge": (
                    {k: judge.get(k) for k in ("status", "achieved", "explanation")}
                    if judge
                    else None
                ),
            }
        )
    return {
        "round_id": record.id,
        "challenge": challenge,
        "status": record.status,
        "end_reason": record.end_reason,
        "turns_used": record.turns,
        "turn_limit": record.turn_limit,
        "turns_left": max(0, record.turn_limit - record.turns),
        "time_limit_s": record.time_limit_s,
        "started_at": _iso(record.started_at),
        "deadline_at": _iso(record.deadline_at),
        "seconds_left": round(seconds_left, 1),
        "ended_at": _iso(record.ended_at),
        "success_turn": record.success_turn,
        "success_method": record.success_method,
        "duplicate": record.duplicate_of is not None,
        "model": record.model if ended else None,
        "secret": record.challenge.get("canary") if ended else None,
        "turns": turns,
    }


@dataclass
class RedTeamGame:
    """One per web app; holds the challenge set and reaches models through the arena's own
    providers and health view."""

    challenges: ChallengeSet
    specs: Sequence[ModelSpec]
    providers: dict[str, Provider]
    models: ModelCatalog
    store: StoreCalls
    secret: bytes
    # judge.calls.JudgeCaller by model name, for judge-goal challenges (see judge_for).
    judge_callers: dict[str, Any] = field(default_factory=dict)
    default_judge: str | None = None
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def player_id(self, session_id: str) -> str:
        return store_players.player_id_for(self.secret, session_id)

    def playable(self) -> list[Any]:
        """Challenges that can be played here (a judge goal needs a judge model)."""
        return [
            c
            for c in self.challenges.challenges
            if not isinstance(c, JudgeGoalChallenge) or self.judge_for(c) is not None
        ]

    def judge_for(self, challenge: JudgeGoalChallenge) -> Any:
        """The challenge's own judge model, else the game's; None when there is neither."""
        return self.judge_callers.get(challenge.judge_model or self.default_judge or "")

    def challenge(self, challenge_id: str) -> Any:
        for c in self.playable():
            if c.id == challenge_id:
                return c
        raise NotFound(f"No challenge {challenge_id!r}.", param="challenge_id")

    def draw_model(self, challenge: Any) -> str:
        """One model the challenge allows, drawn like an anonymous battle's."""
        allowed = set(challenge.models)
        eligible = [
            s
            for s in eligible_for_battle(
                [s for s in self.specs if s.name in allowed],
                unavailable=self.models.unavailable(),
            )
            if s.name in self.providers
        ]
        if not eligible:
            # Depends on the challenge only, never on a draw: the same for every player.
            raise NoHealthyWorker(
                "No model of this challenge can play right now; try another challenge or "
                "come back shortly.",
                code="no_model_available",
            )
        weights = np.array([s.arena.sampling_weight for s in eligible], dtype=float)
        index = int(self.rng.choice(len(eligible), p=weights / weights.sum()))
        return eligible[index].name

    def stored_challenge(self, challenge: Any, canary: str | None) -> dict[str, Any]:
        """The snapshot a round keeps: the full definition, the public part, the canary."""
        doc = challenge.model_dump(mode="json")
        doc["public"] = public_challenge(challenge)
        doc["canary"] = canary
        return doc

    async def start_round(
        self, *, session_id: str, ip_hash: str | None, challenge_id: str
    ) -> RoundRecord:
        challenge = self.challenge(challenge_id)
        model = self.draw_model(challenge)
        system_prompt = getattr(challenge, "system_prompt", None)
        canary = core = None
        if isinstance(challenge, LeakSecretChallenge):
            planted, system_prompt = challenge.plant(random.Random(secrets.randbits(128)))
            canary, core = planted.canary, planted.core
        try:
            return await self.store.write(
                store_rounds.create_round,
                self.store.db,
                player_id=self.player_id(session_id),
                session_id=session_id,
                ip_hash=ip_hash,
                challenge=self.stored_challenge(challenge, canary),
                model=model,
                system_prompt=system_prompt,
                secret_core=core,
            )
        except NotFound:
            raise BadRequest(
                "Your session is no longer valid: reload the page to start a new one.",
                code="session_expired",
            ) from None

    async def load(self, round_id: str, session_id: str) -> RoundRecord:
        """The caller's round, ended first when its time ran out while nobody watched."""
        player = self.player_id(session_id)
        record = await self.store.read(store_rounds.load_round, self.store.db, round_id, player)
        due = not record.ended and record.deadline_at <= datetime.now(UTC)
        if due and await self.store.write(store_rounds.expire_if_due, self.store.db, round_id):
            record = await self.store.read(store_rounds.load_round, self.store.db, round_id, player)
        return record

    async def give_up(self, round_id: str, session_id: str) -> RoundRecord:
        return await self.store.write(
            store_rounds.end_round,
            self.store.db,
            round_id,
            self.player_id(session_id),
            reason="gave_up",
        )

    async def nickname(self, session_id: str) -> str | None:
        return await self.store.read(
            store_players.get_nickname, self.store.db, self.player_id(session_id)
        )

    async def set_nickname(self, session_id: str, raw: str | None) -> str | None:
        nickname = clean_nickname(raw) if raw else None
        await self.store.write(
            store_players.set_nickname, self.store.db, self.player_id(session_id), nickname
        )
        return nickname
