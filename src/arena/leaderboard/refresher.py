"""Recompute leaderboard artifacts in the background while votes keep arriving.

A server calls ``request()`` whenever new votes land; the refresher coalesces requests, runs
at most one recomputation at a time, waits at least ``min_interval_s`` between runs and never
lets a failed run take the server down (the last error is kept for inspection). The web page
reads the newest artifact set on each request, so it shows a new set as soon as it is written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class ArtifactRefresher:
    """Coalescing background runner around a recompute function (e.g. a partial of
    ``arena.leaderboard.build.refresh_artifacts``)."""

    def __init__(self, recompute: Callable[[], Any], *, min_interval_s: float = 60.0) -> None:
        self._recompute = recompute
        self._min_interval_s = min_interval_s
        self._run_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_finished: float | None = None
        self.runs = 0
        self.last_error: BaseException | None = None
        self.last_result: Any = None

    def request(self) -> None:
        """Ask for a recomputation soon; returns at once. Repeated calls coalesce."""
        self._wanted.set()
        with self._thread_lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._loop, name="leaderboard-refresh", daemon=True
                )
                self._thread.start()

    def run_now(self) -> Any:
        """Recompute in the calling thread (e.g. at start-up) and return the result."""
        with self._run_lock:
            return self._run_once()

    def _run_once(self) -> Any:
        try:
            result = self._recompute()
        except Exception as e:  # a bad batch of votes must not kill the server
            log.exception("leaderboard refresh failed")
            self.last_error = e
            return None
        finally:
            self._last_finished = time.monotonic()
        self.runs += 1
        self.last_error = None
        self.last_result = result
        return result

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._wanted.wait(timeout=1.0):
                with self._thread_lock:
                    # Decide to exit under the lock request() starts threads with, so a
                    # request arriving now either is seen here or starts a new thread.
                    if not self._wanted.is_set():
                        self._thread = None
                        return
                continue
            wait = (
                0.0
                if self._last_finished is None
                else self._last_finished + self._min_interval_s - time.monotonic()
            )
            if wait > 0 and self._stop.wait(timeout=wait):
                break
            self._wanted.clear()
            with self._run_lock:
                self._run_once()
        with self._thread_lock:
            self._thread = None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the background thread (a run in progress finishes first)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
