"""Waiting on conditions and watching real processes, for tests that must pass on a busy machine.

``wait_until`` polls a condition with a generous deadline (never a fixed sleep standing in
for "long enough"). ``process_tree`` records a process and all its descendants, each by
process id *and* start time (from ``/proc``, Linux), so ``still_running`` can tell whether
any of them lives on after the parent was killed and they were handed to PID 1, without
mistaking a reused process id for a survivor. ``start_process`` starts a command that ends
with the test process however that ends, even by SIGKILL (see ``support/lifeline.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# A generous bound on "a process starts / stops / answers": a loaded two-core machine can be
# tens of times slower than an idle one; a test waiting on a condition ends as soon as it holds.
PROCESS_DEADLINE_S = 120.0

PROC = Path("/proc")
LIFELINE = Path(__file__).with_name("lifeline.py")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout_s: float = PROCESS_DEADLINE_S,
    what: str = "the condition",
    interval_s: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something truthy (returned), or fail after
    ``timeout_s`` saying ``what`` never happened."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time in clock ticks, state) of ``pid``, or None when it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19]), fields[0]


def cpu_seconds(pid: int) -> float:
    """CPU time ``pid`` has used so far (all its threads; 0 when it is gone)."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` that are alive (zombies left out)."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] == pid and stat[2] != "Z":
                found.append(int(entry.name))
    return found


def process_tree(pid: int) -> set[tuple[int, int]]:
    """``pid`` and every descendant, as (pid, start time) pairs."""
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        stat = _stat(current)
        if stat is None:
            continue
        tree.add((current, stat[1]))
        todo.extend(children_of(current))
    return tree


def still_running(tree: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The members of ``tree`` still alive (same pid and start time, not a zombie)."""
    alive = set()
    for pid, started in tree:
        stat = _stat(pid)
        if stat is not None and stat[1] == started and stat[2] != "Z":
            alive.add((pid, started))
    return alive


def command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def kill_tree(tree: set[tuple[int, int]]) -> None:
    """SIGKILL whatever of ``tree`` still runs (clean-up after a failed test)."""
    for pid, _ in still_running(tree):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_and_collect(process: subprocess.Popen, *, sig: int = signal.SIGTERM) -> str:
    """Send ``sig``, wait for the exit (killing it past the deadline) and return its output."""
    process.send_signal(sig)
    try:
        return process.communicate(timeout=PROCESS_DEADLINE_S)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[0]


def _pidfd_of(pid: int) -> int:
    """A pidfd of ``pid``, or an error that says why the watchdog cannot run without one."""
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError) as error:
        raise OSError(
            getattr(error, "errno", None),
            "start_process needs os.pidfd_open (Linux 5.3 or later, not refused by a seccomp "
            "filter or a sandbox such as gVisor) so its watchdog can tell when the child "
            f"exits; it failed here: {error}",
        ) from error


# Every LifelinedPopen whose watchdog may still be waiting, for ``_close_lifelines``.
_LIVE: weakref.WeakSet[LifelinedPopen] = weakref.WeakSet()


def _close_lifelines() -> None:
    """In a child forked without exec (``os.fork``, multiprocessing's "fork"), close the copies
    of the lifeline write ends: otherwise that child keeps every watchdog waiting, and every
    test child alive, for as long as it lives after pytest has gone. (A child that execs
    never keeps them: Python opens pipes close-on-exec.)

    Each is replaced by /dev/null rather than closed: no lock of the file object (perhaps
    held by a thread that did not survive the fork) is taken, and the object keeps a
    descriptor of its own, so nothing closes a number that has since been reused."""
    devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        for proc in list(_LIVE):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(devnull, proc.lifeline.stdin.fileno(), inheritable=False)
    finally:
        os.close(devnull)
    _LIVE.clear()


os.register_at_fork(after_in_child=_close_lifelines)


class LifelinedPopen(subprocess.Popen):
    """A ``Popen`` whose process, with its process group, ends when this process ends.

    The command runs in a process group of its own, watched by ``support/lifeline.py``
    (``self.lifeline``): when this process is gone, even SIGKILLed so no teardown runs, the
    watchdog SIGTERMs that group, then SIGKILLs it. Everything else is plain ``Popen``:
    ``pid`` is the command's, signals reach it directly, and once it has exited and been
    reaped (``wait``/``poll``) the watchdog is stood down without touching what the command
    left behind, so tests that count a killed server's leftovers still count them.
    Dropping the last reference to a running one closes the pipe too: keep it while needed.
    A child forked from this process without exec closes its copy of the pipe at once
    (``_close_lifelines``), so only this process holds it.
    """

    def __init__(self, args, **popen_kwargs) -> None:
        if not popen_kwargs.get("start_new_session"):
            popen_kwargs.setdefault("process_group", 0)
        super().__init__(args, **popen_kwargs)
        self._lifeline_lock = threading.Lock()
        try:
            # Opened before anything here could reap the child: it cannot name a reused pid.
            pidfd = _pidfd_of(self.pid)
            try:
                self.lifeline: subprocess.Popen[bytes] = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(LIFELINE), str(self.pid), str(pidfd)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    pass_fds=(pidfd,),
                    start_new_session=True,
                )
            finally:
                os.close(pidfd)
            _LIVE.add(self)
        except BaseException:
            # No watchdog: the child would outlive pytest unwatched, so it does not run at all.
            self.kill()
            super().wait()
            raise

    def poll(self) -> int | None:
        code = super().poll()
        if code is not None:
            self._stand_down()
        return code

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        self._stand_down()
        return code

    def _stand_down(self) -> None:
        """Tell the watchdog the command is reaped (it exits, killing nothing) and reap it."""
        with self._lifeline_lock:
            watchdog = self.lifeline
            if watchdog.returncode is not None:
                return
            assert watchdog.stdin is not None
            with contextlib.suppress(OSError, ValueError):
                watchdog.stdin.write(b"x")
                watchdog.stdin.flush()
            try:
                watchdog.wait(PROCESS_DEADLINE_S)
            except subprocess.TimeoutExpired:
                watchdog.kill()
                watchdog.wait()
            with contextlib.suppress(OSError, ValueError):
                watchdog.stdin.close()


def start_process(args, **popen_kwargs) -> LifelinedPopen:
    """``subprocess.Popen(args, **popen_kwargs)`` for a test's long-lived child (a server, a
    worker, a stand-in): the child and its process group end when the test process ends,
    however it ends. Use it for every process a test starts that could outlive pytest."""
    return LifelinedPopen(args, **popen_kwargs)
