"""A caller's battles: read back from the store in one transaction (another session's
battle reads exactly like an unknown id: 404), and which of them this process is streaming
a turn of right now.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from arena.errors import NotFound
from arena.web.records import StoredBattle, in_one_transaction, rebuild_battle
from arena.web.store_calls import StoreCalls


def utcnow() -> datetime:
    return datetime.now(UTC)


class BattleAccess:
    def __init__(self, store: StoreCalls, *, max_turns: int, stale_after_s: float) -> None:
        self.store = store
        self.max_turns = max_turns
        # A turn older than this is no longer streaming, whatever this process believes.
        self.stale_after_s = stale_after_s
        # Battles this process is streaming now -> start time (monotonic).
        self._in_flight: dict[str, float] = {}

    def streaming(self, battle_id: str) -> bool:
        started = self._in_flight.get(battle_id)
        if started is None:
            return False
        if time.monotonic() - started > self.stale_after_s:
            self._in_flight.pop(battle_id, None)
            return False
        return True

    def begin_turn(self, battle_id: str) -> None:
        self._in_flight[battle_id] = time.monotonic()

    def release(self, battle_id: str) -> None:
        """The turn of this battle is over (or never started streaming)."""
        self._in_flight.pop(battle_id, None)

    def rebuild(self, tx: Any, battle_id: str, session_id: str, *, in_flight: bool) -> StoredBattle:
        """The caller's battle, inside a transaction; anyone else's (or an unknown id) is 404."""
        try:
            stored = rebuild_battle(
                tx,
                battle_id,
                max_turns=self.max_turns,
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
        in_flight = self.streaming(battle_id)
        return await self.store.read(
            in_one_transaction,
            self.store.db,
            lambda tx: self.rebuild(tx, battle_id, session_id, in_flight=in_flight),
            read_only=True,
        )
