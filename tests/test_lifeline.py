"""Processes the tests start end with pytest, however pytest ends.

A small Python process stands in for pytest: it starts a long-lived child (which starts a
grandchild) through ``support.processes.start_process``, from its main thread or from a
thread that ends at once (where ``PR_SET_PDEATHSIG`` would fire too early or never), and
is then SIGKILLed or SIGTERMed, so no teardown of it runs. Child, grandchild and watchdog
must all be gone. Below that, the helper must not change what tests measure: ``pid`` is the
command's own, signals and exit status are its own, output passes through, and a child
that died while the test lived keeps what it left behind.
"""

from __future__ import annotations

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

# The stand-in for pytest: starts the child through the helper, says so, then blocks.
STAND_IN = """
import sys, threading, time
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
    start()
print("ready", started[0].pid, started[0].lifeline.pid, flush=True)
time.sleep(600)
"""


def _start_stand_in(how: str, child_arg: str = "-") -> tuple[subprocess.Popen, dict[str, int]]:
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
    pids: dict[str, int] = {}
    assert stand_in.stdout is not None
    while "child" not in pids or "ready" not in pids:
        line = stand_in.stdout.readline()
        assert line, "the stand-in for pytest ended before its child was running"
        fields = line.split()
        if fields[0] == "child":
            pids["child"], pids["grandchild"] = int(fields[1]), int(fields[2])
        else:
            assert int(fields[1]) == pids.get("child", int(fields[1]))
            pids["ready"], pids["watchdog"] = int(fields[1]), int(fields[2])
    assert pids["ready"] == pids["child"]
    return stand_in, pids


@pytest.mark.parametrize(
    ("how", "sig", "child_arg"),
    [
        ("main", signal.SIGKILL, "-"),
        ("main", signal.SIGTERM, "-"),
        ("thread", signal.SIGKILL, "-"),
        ("main", signal.SIGKILL, "ignore-sigterm"),  # a child deaf to SIGTERM gets SIGKILL
    ],
    ids=["sigkill", "sigterm", "started-from-an-ended-thread", "child-ignores-sigterm"],
)
def test_children_end_when_the_test_process_is_killed(how, sig, child_arg):
    stand_in, pids = _start_stand_in(how, child_arg)
    tree: set[tuple[int, int]] = set()
    try:
        tree = process_tree(stand_in.pid)
        members = {pid for pid, _ in tree}
        assert {pids["child"], pids["grandchild"], pids["watchdog"]} <= members
        stand_in.send_signal(sig)
        assert stand_in.wait(PROCESS_DEADLINE_S) == -sig  # died, no teardown of its own
        wait_until(
            lambda: not still_running(tree),
            what="the child, its grandchild and the watchdog to end after the parent died",
        )
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
