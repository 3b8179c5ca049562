"""Run functions in a child Python process that ends with its parent, however the parent ends.

``ChildProcess`` starts ``python -m arena.child_process`` (a fresh interpreter, never a fork
of a threaded server) and talks to it over two pipes: each call sends a pickled function
down the child's stdin, the child runs it and sends the pickled result (or exception) back
on a private copy of its stdout. The child's stdin is also its lifeline: a thread in the
child reads it all the time, and end-of-file, which the kernel delivers as soon as the
parent is gone (it exited, crashed or was SIGKILLed), makes the child exit at once, even in
the middle of a call.

Why not ``multiprocessing`` or ``ProcessPoolExecutor``: their spawn start method also starts
a resource-tracker process and registers semaphores; a killed server left both behind (and
shutdown printed "leaked semaphore" warnings). Why not ``prctl(PR_SET_PDEATHSIG)``: Linux
sends it when the *thread* that started the child ends, and the child is started from a
short-lived background thread; the pipe works for any thread, on any POSIX system.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar

T = TypeVar("T")
_LENGTH = struct.Struct("!Q")


class ChildDied(RuntimeError):
    """The child process ended (killed, out of memory, closed) before it answered."""


def _send(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> bytes:
    """One frame; ``EOFError`` when the other side closed the pipe."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return payload


class ChildProcess:
    """One child interpreter, started on the first call and again after it died.

    Calls run one at a time. ``nice`` lowers the child's CPU priority, so that on a busy
    machine the scheduler serves the parent's requests first.
    """

    def __init__(self, *, nice: int = 0) -> None:
        self._nice = nice
        self._proc: subprocess.Popen[bytes] | None = None
        self._call_lock = threading.Lock()  # one call at a time
        self._state_lock = threading.Lock()  # guards _proc and _closed, never held long
        self._closed = False

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None or proc.poll() is not None else proc.pid

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` in the child and return its result (or raise its exception).

        ``fn`` and its result must pickle. Raises ``ChildDied`` when the child ended before
        answering; the next call starts a new one.
        """
        request = pickle.dumps(fn)  # a function that does not pickle fails here, child intact
        with self._call_lock:
            proc = self._running()
            try:
                assert proc.stdin is not None and proc.stdout is not None
                _send(proc.stdin, request)
                ok, value = pickle.loads(_receive(proc.stdout))
            except (OSError, EOFError, ValueError) as e:  # ValueError: close() shut the pipe
                self._discard(proc)
                raise ChildDied(f"child process {proc.pid} ended before it answered") from e
        if ok:
            return value
        raise value

    def close(self, timeout_s: float = 5.0) -> None:
        """End the child now (a call in progress raises ``ChildDied``); later calls fail."""
        with self._state_lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc, timeout_s)

    def _running(self) -> subprocess.Popen[bytes]:
        with self._state_lock:
            if self._closed:
                raise ChildDied("the child process was closed")
            if self._proc is not None and self._proc.poll() is None:
                return self._proc
            stale, self._proc = self._proc, None
        if stale is not None:
            _end(stale, 0)
        proc = subprocess.Popen(
            [sys.executable, "-m", "arena.child_process", str(self._nice)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdin is not None
        # Modules the parent can import (tests add folders to sys.path) the child can too.
        # If it died at once, the call that follows reports it.
        with contextlib.suppress(OSError):
            _send(proc.stdin, pickle.dumps(list(sys.path)))
        with self._state_lock:
            if self._closed:  # close() ran meanwhile: this child must not outlive it
                _end(proc, 0)
                raise ChildDied("the child process was closed")
            self._proc = proc
        return proc

    def _discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._state_lock:
            if self._proc is proc:
                self._proc = None
        _end(proc, 0)


def _end(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Stop ``proc`` (SIGTERM, then SIGKILL after ``timeout_s``), reap it, close its pipes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                pipe.close()


# ---------------------------------------------------------------- the child's side


def _watch_parent(stream: IO[bytes], requests: queue.SimpleQueue[bytes]) -> None:
    """Hand each request to the main thread; exit the process when the parent is gone."""
    while True:
        try:
            requests.put(_receive(stream))
        except (EOFError, OSError):
            os._exit(0)  # no clean-up: the parent, who wanted the results, is gone


def _serve(requests: queue.SimpleQueue[bytes], results: IO[bytes]) -> None:
    while True:
        request = requests.get()
        try:
            reply: tuple[bool, Any] = (True, pickle.loads(request)())
        except Exception as e:  # the parent decides what a failure means
            reply = (False, e)
        except BaseException as e:  # SystemExit and the like: a plain failure to the parent
            reply = (False, RuntimeError(f"the function ended the child's work: {e!r}"))
        try:
            payload = pickle.dumps(reply)
        except Exception as e:  # e.g. an exception carrying an unpicklable object
            payload = pickle.dumps((False, RuntimeError(f"unpicklable reply: {reply[1]!r} ({e})")))
        try:
            _send(results, payload)
        except OSError:
            os._exit(0)  # the parent closed its end: it is gone


def main() -> None:
    # Results go on a private copy of stdout; whatever the work prints goes to stderr.
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when we end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    nice = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    stdin = sys.stdin.buffer
    try:
        parent_path = pickle.loads(_receive(stdin))
    except (EOFError, OSError):
        os._exit(0)
    sys.path.extend(p for p in parent_path if p not in sys.path)
    requests: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    threading.Thread(
        target=_watch_parent, args=(stdin, requests), name="parent-watch", daemon=True
    ).start()
    _serve(requests, results)


if __name__ == "__main__":
    main()
