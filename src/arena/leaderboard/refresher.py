"""Recompute leaderboard artifacts in the background while votes keep arriving.

A server calls ``request()`` whenever new votes land; the refresher coalesces requests, runs
at most one recomputation at a time, waits at least ``min_interval_s`` between runs and never
lets a failed run take the server down (the last error is kept for inspection). The web page
reads the newest artifact set on each request, so it shows a new set as soon as it is written.

A server runs the recomputation in a child process (``executor_factory``): refitting every
board takes seconds of pure Python and NumPy work that, in a thread, would hold the serving
process's GIL and stall every request meanwhile. The recompute function and its result then
cross the process boundary, so both must pickle (``refresh_artifacts`` reads the store by
URL and writes the artifacts to disk itself).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

log = logging.getLogger(__name__)


class ArtifactRefresher:
    """Coalescing background runner around a recompute function (e.g. a partial of
    ``arena.leaderboard.build.refresh_artifacts``)."""

    def __init__(
        self,
        recompute: Callable[[], Any],
        *,
        min_interval_s: float = 60.0,
        executor_factory: Callable[[], Executor] | None = None,
    ) -> None:
        self._recompute = recompute
        self._min_interval_s = min_interval_s
        self._executor_factory = executor_factory
        self._executor: Executor | None = None
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

    def _call(self) -> Any:
        if self._executor_factory is None:
            return self._recompute()
        if self._executor is None:
            self._executor = self._executor_factory()  # started on first use, then kept
        try:
            return self._executor.submit(self._recompute).result()
        except BrokenProcessPool:
            self._executor = None  # the child died (killed, out of memory): a new one next time
            raise

    def _run_once(self) -> Any:
        try:
            result = self._call()
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
        """Stop the background thread (a run in progress finishes first) and the child."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def child_process_executor() -> Executor:
    """One spawned worker process (a fresh interpreter, never a fork of a threaded server),
    at a lower CPU priority: on a busy machine the scheduler serves requests first."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_lower_priority,
    )


def _lower_priority() -> None:
    if hasattr(os, "nice"):
        os.nice(10)
