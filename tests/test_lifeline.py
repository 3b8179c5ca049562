"""Processes the tests start end with pytest, however pytest ends.

A small Python process stands in for pytest: it starts a long-lived child (which starts a
grandchild) through ``support.processes.start_process``, from its main thread or from a
thread that ends at once (where ``PR_SET_PDEATHSIG`` would fire too early or never), and
is then SIGKILLed or SIGTERMed, so no teardown of it runs. Child, grandchild and watchdog
must all be gone; so must both of two children it started, and its child still when it had
forked a copy of itself (no exec) that lives on. Below that, the helper must not change
what tests measure: ``pid`` is the command's own, signals and exit status are its own,
output passes through, and a child that died while the test lived keeps what it left behind.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support.processes import (
    PROCESS_DEADLINE_S,
    command_line,
    kill_tree,
    process_tree,
    start_process,
    still_running,
    wait_until,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

TESTS = Path(__file__).resolve().parent

# The child: starts a grandchild, reports both pids, then waits "for ever".
CHILD = """
import os, signal, subprocess, sys, time
if sys.argv[1] == "ignore-sigterm":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("child", os.getpid(), grandchild.pid, flush=True)
time.sleep(600)
"""

# The stand-in for pytest: starts one child (two with "two") through the helper, from its
# main thread or from a thread that has ended; with "fork" it then forks a copy of itself
# that lives on without exec, as a test using os.fork or multiprocessing would. It says
# what it started, then blocks.
STAND_IN = """
import os, sys, threading, time
from support.processes import start_process
how, child_code, child_arg = sys.argv[1:4]
started = []
def start():
    started.append(start_process([sys.executable, "-c", child_code, child_arg]))
if how == "thread":
    starter = threading.Thread(target=start)
    starter.start()
    starter.join()  # the starting thread is gone before the parent is killed
else:
    for _ in range(2 if how == "two" else 1):
        start()
forked = 0
if how == "fork":
    forked = os.fork()
    if forked == 0:
        time.sleep(600)
        os._exit(0)
print("ready", forked, *(f"{p.pid}:{p.lifeline.pid}" for p in started), flush=True)
time.sleep(600)
"""


def _start_stand_in(how: str, child_arg: str = "-") -> tuple[subprocess.Popen, dict[str, list]]:
    """Start the stand-in; return it and the pids of what it started: ``children`` (each
    with ``grandchildren`` in the same order), their ``watchdogs`` and ``forked``, its copy."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    stand_in = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, how, CHILD, child_arg],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    reported: dict[int, int] = {}  # child: grandchild, as each child says
    pids: dict[str, list] = {}
    assert stand_in.stdout is not None
    while "children" not in pids or len(reported) < len(pids["children"]):
        line = stand_in.stdout.readline()
        assert line, "the stand-in for pytest ended before its children were running"
        fields = line.split()
        if fields[0] == "child":
            reported[int(fields[1])] = int(fields[2])
        else:
            pairs = [tuple(map(int, field.split(":"))) for field in fields[2:]]
            pids["forked"] = [int(fields[1])] if int(fields[1]) else []
            pids["children"] = [child for child, _ in pairs]
            pids["watchdogs"] = [watchdog for _, watchdog in pairs]
    assert set(reported) == set(pids["children"])
    pids["grandchildren"] = [reported[child] for child in pids["children"]]
    return stand_in, pids


def _watched(pids: dict[str, list]) -> set[int]:
    return {*pids["children"], *pids["grandchildren"], *pids["watchdogs"]}


@pytest.mark.parametrize(
    ("how", "sig", "child_arg"),
    [
        ("main", signal.SIGKILL, "-"),
        ("main", signal.SIGTERM, "-"),
        ("thread", signal.SIGKILL, "-"),
        ("main", signal.SIGKILL, "ignore-sigterm"),  # a child deaf to SIGTERM gets SIGKILL
        ("two", signal.SIGKILL, "-"),
        ("fork", signal.SIGKILL, "-"),  # a copy forked without exec outlives the parent
    ],
    ids=[
        "sigkill",
        "sigterm",
        "started-from-an-ended-thread",
        "child-ignores-sigterm",
        "two-children",
        "parent-forked-without-exec",
    ],
)
def test_children_end_when_the_test_process_is_killed(how, sig, child_arg):
    stand_in, pids = _start_stand_in(how, child_arg)
    tree: set[tuple[int, int]] = set()
    try:
        tree = process_tree(stand_in.pid)
        assert _watched(pids) <= {pid for pid, _ in tree}
        assert len(pids["children"]) == (2 if how == "two" else 1)
        stand_in.send_signal(sig)
        assert stand_in.wait(PROCESS_DEADLINE_S) == -sig  # died, no teardown of its own
        watched = {(pid, started) for pid, started in tree if pid in _watched(pids)}
        wait_until(
            lambda: not still_running(watched),
            what="the children, their grandchildren and the watchdogs to end after the parent died",
        )
        # A copy forked without exec is no child of the helper's: it lives on (the test
        # ends it), yet it did not keep the lifelined children alive.
        assert {pid for pid, _ in still_running(tree)} == set(pids["forked"])
    finally:
        stand_in.kill()
        stand_in.wait()
        stand_in.stdout.close()
        kill_tree(tree)


def test_the_command_is_the_process_the_test_holds():
    proc = start_process(
        [sys.executable, "-c", "import sys, time; print('hello', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "hello\n"  # output passes through unchanged
        assert "print('hello'" in command_line(proc.pid)  # no launcher in between
        assert proc.lifeline.pid not in {pid for pid, _ in process_tree(proc.pid)}
        proc.terminate()
        assert proc.wait(PROCESS_DEADLINE_S) == -signal.SIGTERM  # the command's own status
        assert proc.lifeline.returncode == 0  # stood down with its command
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_child_killed_while_the_test_lives_keeps_its_leftovers():
    """Tests that SIGKILL a server and then look for its orphans must still see them: the
    watchdog stands down when the child exits and never cleans up after it."""
    proc = start_process([sys.executable, "-c", CHILD, "-"], stdout=subprocess.PIPE, text=True)
    tree: set[tuple[int, int]] = set()
    try:
        _, child, grandchild = proc.stdout.readline().split()
        assert int(child) == proc.pid
        tree = process_tree(proc.pid)
        proc.send_signal(signal.SIGKILL)
        # The watchdog notices the exit by itself, before the test reaps the child.
        wait_until(lambda: proc.lifeline.poll() is not None, what="the watchdog to stand down")
        assert proc.wait(PROCESS_DEADLINE_S) == -signal.SIGKILL
        assert int(grandchild) in {pid for pid, _ in still_running(tree)}
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        kill_tree(tree)


def test_a_command_that_cannot_start_fails_as_popen_does():
    with pytest.raises(FileNotFoundError):
        start_process(["/nonexistent/command"])


def test_a_kernel_without_pidfd_open_leaves_no_child_behind(monkeypatch):
    """Where ``pidfd_open`` is refused (old kernels, seccomp, gVisor) the command has already
    started: it is killed and reaped, and the error says why."""
    refused: list[int] = []

    def refuse(pid: int) -> int:
        refused.append(pid)
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", refuse)
    with pytest.raises(OSError, match=r"needs os\.pidfd_open") as raised:
        start_process([sys.executable, "-c", "import time; time.sleep(600)"])
    assert raised.value.errno == errno.ENOSYS
    assert len(refused) == 1
    assert not Path(f"/proc/{refused[0]}").exists()  # killed and reaped, not even a zombie
