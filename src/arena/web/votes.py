"""Votes and direct-chat feedback on a caller's battle: read, checked and recorded in one
transaction, ahead of queued message writes. The reply names the models: an anonymous
battle's names come out only once its vote is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from arena.battles.battle import Battle
from arena.battles.battle_types import BattleMode, BattleState, Feedback, VoteChoice, parse_vote
from arena.battles.battle_views import FAILED_BATTLE_NOTICE
from arena.battles.limits import ArenaRateLimiter
from arena.errors import BadRequest
from arena.store import votes as store_votes
from arena.web.battle_access import BattleAccess, utcnow
from arena.web.model_catalog import ModelCatalog
from arena.web.records import in_one_transaction
from arena.web.store_calls import StoreCalls
from arena.web.write_queue import VOTE

CHOICE_TO_STORE = {
    VoteChoice.A_BETTER: "a",
    VoteChoice.B_BETTER: "b",
    VoteChoice.TIE: "tie",
    VoteChoice.BOTH_BAD: "bothbad",
}
API_TO_CHOICE = {"a": "a_better", "b": "b_better", "tie": "tie", "bothbad": "both_bad"}


@dataclass
class VoteRecorder:
    store: StoreCalls
    battles: BattleAccess
    models: ModelCatalog
    rate_limiter: ArenaRateLimiter
    # (battle id, created at) -> the battle's share link (``arena.web.share``), when served.
    share_url_for: Callable[[str, datetime], str] | None = None

    async def record(
        self,
        *,
        battle_id: str,
        session_id: str,
        ip_hash: str | None,
        value: str,
        on_counted: Callable[[], None] | None,
    ) -> dict[str, Any]:
        """Check and record the vote; the reply names the models."""
        await self.rate_limiter.hit_vote(session_id=session_id, ip_hash=ip_hash)
        in_flight = self.battles.streaming(battle_id)
        now = utcnow()

        def check_and_record(tx: Any) -> tuple[Battle, str, bool]:
            """Read, check and write in one transaction: one trip to a worker thread, and
            no other write between the check and the vote."""
            stored = self.battles.rebuild(tx, battle_id, session_id, in_flight=in_flight)
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
                store_votes.record_vote(
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
            store_votes.record_vote(
                tx,
                battle_id,
                CHOICE_TO_STORE[choice],
                session_id=session_id,
                ip_hash=ip_hash,
                status="voted",
                now=now,
            )
            return battle, CHOICE_TO_STORE[choice], battle.outcome().counts_for_ratings

        battle, store_value, counted = await self.store.write(
            in_one_transaction, self.store.db, check_and_record, priority=VOTE
        )
        if counted and on_counted is not None:
            on_counted()
        return {
            "battle_id": battle_id,
            "vote": store_value,
            "counted": counted,
            "leaked": battle.leaked,
            "share_url": (
                self.share_url_for(battle_id, battle.created_at) if self.share_url_for else None
            ),
            "models": {
                side: {
                    "name": battle.model_for(side),
                    "demo": self.models.is_demo(battle.model_for(side)),
                    "organization": self.models.organization(battle.model_for(side)),
                }
                for side in battle.sides
            },
        }
