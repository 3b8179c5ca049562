"""A caller's battles: read back from the store in one transaction (another session's
battle reads exactly like an unknown id: 404), and the turn leases this process holds.

A turn is streamed under a lease in the database (``arena.store.turn_leases``), so any
replica on the same database refuses a second stream of the same battle, and a battle whose
streaming process died is usable again once the lease lapses (``lease_ttl_s``). This
process renews its leases every third of that while it streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from arena.errors import Conflict, NotFound
from arena.store import turn_leases
from arena.web.records import StoredBattle, in_one_transaction, rebuild_battle
from arena.web.store_calls import StoreCalls

log = logging.getLogger("arena.web")

TURN_LEASE_S = 10.0
"""How long a turn lease lasts unless renewed: the most a battle stays blocked after the
process streaming it died."""

STREAMING_CONFLICT = "The models are still answering the last message."


def utcnow() -> datetime:
    return datetime.now(UTC)


class BattleAccess:
    def __init__(
        self,
        store: StoreCalls,
        *,
        max_turns: int,
        stale_after_s: float,
        lease_ttl_s: float | None = None,
    ) -> None:
        self.store = store
        self.max_turns = max_turns
        # A turn older than this is no longer streaming, whatever this process believes.
        self.stale_after_s = stale_after_s
        self.lease_ttl_s = TURN_LEASE_S if lease_ttl_s is None else lease_ttl_s
        self.owner = uuid.uuid4().hex  # this process, as lease holder
        # Battles this process is streaming now -> start time (monotonic).
        self._in_flight: dict[str, float] = {}
        self._renewer: asyncio.Task[None] | None = None

    def streaming(self, battle_id: str) -> bool:
        started = self._in_flight.get(battle_id)
        if started is None:
            return False
        if time.monotonic() - started > self.stale_after_s:
            self._in_flight.pop(battle_id, None)
            return False
        return True

    async def begin_turn(self, battle_id: str) -> None:
        """Take the battle's turn lease, or raise 409 when any process holds it."""
        if self.streaming(battle_id):
            raise Conflict(STREAMING_CONFLICT, code="battle_streaming")
        self._in_flight[battle_id] = time.monotonic()  # twins in this process stop above
        try:
            taken = await self.store.write(
                turn_leases.acquire_turn,
                self.store.db,
                battle_id,
                self.owner,
                now=utcnow(),
                ttl_s=self.lease_ttl_s,
            )
        except BaseException:
            self._in_flight.pop(battle_id, None)
            raise
        if not taken:
            self._in_flight.pop(battle_id, None)
            raise Conflict(STREAMING_CONFLICT, code="battle_streaming")
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_leases(), name="turn-lease-renewal")

    def release(self, battle_id: str) -> None:
        """The turn of this battle is over (or never started streaming): drop the lease."""
        if self._in_flight.pop(battle_id, None) is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop (a shutdown path): the lease simply lapses
            return
        task = asyncio.ensure_future(self._release_lease(battle_id))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def end_turn(self, battle_id: str) -> None:
        """The turn is stored: drop the lease now, before the client hears it ended."""
        if self._in_flight.pop(battle_id, None) is not None:
            await self._release_lease(battle_id)

    async def _release_lease(self, battle_id: str) -> None:
        try:
            await self.store.write(turn_leases.release_turn, self.store.db, battle_id, self.owner)
        except Exception:  # it lapses on its own within the lease time
            log.warning("could not release the turn lease of battle %s", battle_id, exc_info=True)

    async def _renew_leases(self) -> None:
        """Renew this process's leases while it streams any turn; ends when none is left."""
        while self._in_flight:
            await asyncio.sleep(self.lease_ttl_s / 3)
            if not self._in_flight:
                break
            with contextlib.suppress(Exception):
                await self.store.write(
                    turn_leases.renew_turns,
                    self.store.db,
                    list(self._in_flight),
                    self.owner,
                    now=utcnow(),
                    ttl_s=self.lease_ttl_s,
                )

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
