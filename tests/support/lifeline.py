"""A watchdog that ends a test's child process group once the test process is gone.

``support.processes.start_process`` starts the real command (``arena serve``, a worker,
HAProxy, redis-server…) in a process group of its own and, beside it, this script:

    python -I -S lifeline.py CHILD_PID PIDFD

- stdin is a pipe whose write end only the test process (pytest) holds: Python opens it
  close-on-exec, so no command pytest starts inherits it, and ``support.processes`` closes
  it in any child that pytest forks without exec (``os.register_at_fork``). The kernel closes
  it when pytest ends, however it ends (exit, crash, SIGTERM, SIGKILL), so end-of-file here
  means "pytest is gone": SIGTERM the child's process group, give the child ``GRACE_S`` to
  shut down cleanly, then SIGKILL whatever of the group is left (grandchildren included).
- A byte on stdin means "the test has reaped the child": exit, touching nothing.
- ``PIDFD`` (a pidfd of the child, opened by pytest before it could reap the child, so it
  can never name a reused pid) turns readable when the child exits: exit, touching nothing.
  What a child that died leaves behind is exactly what tests such as the orphan tests
  measure, so the watchdog never cleans up after a child that ended while pytest lived.

Why a watchdog *beside* the child rather than a launcher in front of it: ``proc.pid`` stays
the real server, ``terminate()``/``send_signal(SIGKILL)`` reach it directly, its exit status
and output are its own, and ``process_tree(proc.pid)`` holds only the product's processes.
Why not ``prctl(PR_SET_PDEATHSIG)``: Linux sends it when the *thread* that started the child
ends, and fixtures start children from threads; a pipe's end-of-file follows the process.
The watchdog runs in a session of its own, so Ctrl-C or a group SIGTERM (``timeout``) aimed
at pytest's process group does not end it before it has done its job.

Standard library only (``-I -S``: a fast start, nothing from the test's environment).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys

GRACE_S = 10.0  # time for a SIGTERMed server to shut down (and end its own children)


def _signal_group(pgid: int, pidfd: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    # The child itself, even if it moved to another group (it cannot be a reused pid).
    with contextlib.suppress(ProcessLookupError, OSError):
        signal.pidfd_send_signal(pidfd, sig)


def end_group(pgid: int, pidfd: int) -> None:
    """SIGTERM the group, wait up to ``GRACE_S`` for the child to exit, SIGKILL the rest."""
    _signal_group(pgid, pidfd, signal.SIGTERM)
    select.select([pidfd], [], [], GRACE_S)
    _signal_group(pgid, pidfd, signal.SIGKILL)


def watch(pid: int, pidfd: int, lifeline: int = 0) -> str:
    """Block until pytest is gone, the test stands us down or the child exits; say which."""
    poller = select.poll()
    poller.register(lifeline, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    while True:
        ready = {fd for fd, _ in poller.poll()}
        if pidfd in ready:
            return "child exited"
        if lifeline in ready:
            if os.read(lifeline, 1):
                return "stood down"
            end_group(pid, pidfd)
            return "parent gone"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: lifeline.py CHILD_PID PIDFD", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(argv[1]), int(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
