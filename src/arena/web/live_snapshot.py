"""What active pair sampling reads from the live leaderboard: the newest artifact set's
rating covariance and battles per pair (the plain "full" board's ``uncertainty``).

Re-checked at most every ``recheck_s``, and re-read only when a new set has appeared, so a
battle being created costs a dictionary lookup, not a file read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from arena.battles.pair_sampler import LeaderboardSnapshot
from arena.errors import NotFound
from arena.leaderboard.artifacts import load_latest

log = logging.getLogger("arena.web")


class LiveLeaderboardSnapshot:
    def __init__(
        self,
        directory: Path,
        *,
        recheck_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.recheck_s = recheck_s
        self._clock = clock
        self._next_check = 0.0
        self._seen: str | None = None
        self._value: LeaderboardSnapshot | None = None

    def __call__(self) -> LeaderboardSnapshot | None:
        """The newest snapshot; ``None`` while no leaderboard has been computed."""
        now = self._clock()
        if now < self._next_check:
            return self._value
        self._next_check = now + self.recheck_s
        try:
            latest = load_latest(self.directory)
            if latest.directory.name == self._seen:
                return self._value
            uncertainty = latest.get("full", False).uncertainty
        except (NotFound, OSError, ValueError, KeyError) as e:
            log.debug("no leaderboard for active sampling yet: %s", e)
            return self._value
        self._seen = latest.directory.name
        if uncertainty:
            try:
                self._value = LeaderboardSnapshot(
                    models=tuple(uncertainty["models"]),
                    covariance=np.asarray(uncertainty["covariance"], dtype=float),
                    battle_counts=np.asarray(uncertainty["battle_counts"], dtype=float),
                )
            except (KeyError, ValueError, TypeError) as e:
                log.warning("the leaderboard's uncertainty is unusable for sampling: %s", e)
        return self._value
