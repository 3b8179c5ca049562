"""``GET /api/redteam/leaderboard``: the red-team boards as JSON (players, models, challenges).

Its warnings have the main leaderboard's shape: English ``warnings`` and, in the same order,
``warning_codes`` (the same ``LeaderboardWarning`` model), which the page words in its language.

Only ended rounds are rated, so nothing here depends on a round still being played. The
fitted boards are kept while the number of ended rounds stays the same: a request asks the
store for that count (one cheap query) and refits, in a worker thread, only when it moved.
One fit runs at a time; requests that arrive meanwhile get the boards it is replacing (or,
before the first fit, wait for it). Refits are at least ``min_interval_s`` apart (the live
leaderboard's ``leaderboard_refresh_s``): at 100k rounds a fit takes seconds of CPU, and a busy
game ends rounds far more often than that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, Field

from arena.redteam.boards_from_store import boards_payload, fit_stored_rounds, read_rated_rounds
from arena.redteam.ratings import PRELIMINARY_ROUNDS
from arena.store.redteam_rounds import ended_round_count
from arena.web.leaderboard_payload import LeaderboardWarning
from arena.web.redteam_game import RedTeamGame
from arena.web.store_calls import in_thread

if TYPE_CHECKING:
    from arena.web.app import WebContext

CONFIDENCE = 0.95


class BoardEntry(BaseModel):
    rank: int
    name: str
    rating: float | None
    lower: float | None
    upper: float | None
    rounds: int
    successes: int
    preliminary: bool = Field(
        description="Fewer rated rounds than preliminary_rounds: its rank may still move a lot."
    )


class RedTeamLeaderboard(BaseModel):
    """Best first: strongest attacker, most robust model, hardest challenge. A player is
    named by their nickname, or ``player-`` and eight hex digits."""

    n_rounds: int
    confidence: float
    preliminary_rounds: int = Field(
        description="Members with fewer rated rounds than this are marked preliminary."
    )
    warnings: list[str] = Field(description="What to keep in mind when reading the boards.")
    warning_codes: list[LeaderboardWarning] = Field(
        description="The warnings as codes with parameters, in the same order."
    )
    computed_at: str
    players: list[BoardEntry]
    models: list[BoardEntry]
    challenges: list[BoardEntry]


@dataclass
class _Fitted:
    ended_rounds: int
    payload: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class BoardCache:
    """The last fitted boards, keyed by the count of ended rounds they were read after."""

    def __init__(
        self,
        game: RedTeamGame,
        confidence: float = CONFIDENCE,
        min_interval_s: float = 0.0,
        preliminary_rounds: int = PRELIMINARY_ROUNDS,
    ) -> None:
        self.game = game
        self.confidence = confidence
        self.min_interval_s = min_interval_s
        self.preliminary_rounds = preliminary_rounds
        self._fitted: _Fitted | None = None
        self._lock = anyio.Lock()

    async def payload(self) -> dict[str, Any]:
        store = self.game.store
        ended = await store.read(ended_round_count, store.db)
        fitted = self._fitted
        # While a refit runs, others get the boards it replaces rather than queue behind it.
        if fitted is not None and (
            fitted.ended_rounds == ended
            or self._lock.locked()
            or time.monotonic() - fitted.at < self.min_interval_s
        ):
            return fitted.payload
        async with self._lock:
            # Counted again under the lock: the fit another request just made may be current.
            ended = await store.read(ended_round_count, store.db)
            if self._fitted is None or self._fitted.ended_rounds != ended:
                # The count is read before the rounds: a round ending in between is rated now
                # and refitted once more on the next request, never missed.
                stored = await store.read(read_rated_rounds, store.db)
                boards = await in_thread(
                    fit_stored_rounds,
                    stored,
                    confidence=self.confidence,
                    preliminary_rounds=self.preliminary_rounds,
                )
                self._fitted = _Fitted(ended, boards_payload(boards))
            return self._fitted.payload


def redteam_leaderboard_router(ctx: WebContext, game: RedTeamGame) -> APIRouter:
    router = APIRouter(prefix="/api/redteam", tags=["redteam"], route_class=ctx.route_class)
    cache = BoardCache(
        game,
        min_interval_s=ctx.settings.leaderboard_refresh_s,
        preliminary_rounds=ctx.settings.redteam_preliminary_rounds,
    )

    @router.get(
        "/leaderboard",
        response_model=RedTeamLeaderboard,
        summary="Players, models and challenges rated together from the ended rounds.",
    )
    async def leaderboard() -> dict[str, Any]:
        return await cache.payload()

    return router
