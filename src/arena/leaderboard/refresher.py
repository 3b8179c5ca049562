"""Recompute leaderboard artifacts in the background while votes keep arriving.

A server calls ``request()`` whenever new votes land; the refresher coalesces requests, runs
at most one recomputation at a time, waits at least ``min_interval_s`` between runs and never
lets a failed run take the server down (the last error is kept for inspection). The web page
reads the newest artifact set on each request, so it shows a new set as soon as it is written.

A server runs the recomputation in a child process (``in_child_process=True``): refitting
every board takes seconds of pure Python and NumPy work that, in a thread, would hold the
serving process's GIL and stall every request meanwhile. The child (``arena.child_process``)
runs at a lower CPU priority and ends with the server however the server ends; ``close()``
ends it at once. The recompute function and its result cross the process boundary, so both
must pickle (``refresh_artifacts`` reads the store by URL and writes the artifacts to disk
itself, renaming a finished set into place, so a child killed mid-run leaves no half set).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from arena.child_process import ChildDied, ChildProcess

log = logging.getLogger(__name__)

CHILD_NICENESS = 10  # on a busy machine the scheduler serves requests before a refresh


class ArtifactRefresher:
    """Coalescing background runner around a recompute function (e.g. a partial of
    ``arena.leaderboard.build.refresh_artifacts``)."""

    def __init__(
        self,
        recompute: Callable[[], Any],
        *,
        min_interval_s: float = 60.0,
        in_child_process: bool = False,
    ) -> None:
        self._recompute = recompute
        self._min_interval_s = min_interval_s
        self._in_child_process = in_child_process
        self._child: ChildProcess | None = None
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

    @property
    def child_pid(self) -> int | None:
        """The child's process id while it lives (it is kept between runs)."""
        child = self._child
        return None if child is None else child.pid

    def _call(self) -> Any:
        if not self._in_child_process:
            return self._recompute()
        with self._thread_lock:
            if self._stop.is_set():  # close() ran: start no child it would not end
                raise ChildDied("the leaderboard refresher is closed")
            if self._child is None:
                # Started on first use, then kept; if it dies (killed, out of memory) this
                # run fails and the next one starts a new child.
                self._child = ChildProcess(nice=CHILD_NICENESS)
            child = self._child
        return child.call(self._recompute)

    def _run_once(self) -> Any:
        try:
            result = self._call()
        except Exception as e:  # a bad batch of votes must not kill the server
            if isinstance(e, ChildDied) and self._stop.is_set():
                log.info("leaderboard refresh abandoned: the server is stopping")
            else:
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
        """Stop the background thread and end the child. A run in the child is abandoned
        (the next start recomputes); a run in this process finishes first."""
        self._stop.set()
        with self._thread_lock:
            child, self._child = self._child, None
        if child is not None:
            child.close(timeout)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
