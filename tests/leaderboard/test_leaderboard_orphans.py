"""The leaderboard's recomputing child ends with its parent, however the parent ends.

The attack of the issue, reproduced: a real ``arena serve`` is SIGKILLed (then, separately,
SIGTERMed) while its child process is in the middle of a leaderboard recomputation; every
process of that server recorded before the signal must be gone 10 s later, and a SIGTERMed
server must shut down without tracebacks or "leaked semaphore" warnings. Below those, the
mechanism itself (``arena.child_process``) under a plain parent and in-process.
"""

from __future__ import annotations

import functools
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from arena.child_process import ChildDied, ChildProcess
from arena.leaderboard.refresher import ArtifactRefresher
from support.processes import (
    PROCESS_DEADLINE_S,
    children_of,
    command_line,
    cpu_seconds,
    free_port,
    kill_tree,
    process_tree,
    start_process,
    still_running,
    wait_until,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

ARENA = [sys.executable, "-c", "from arena.cli import app; app()"]
ORPHAN_DEADLINE_S = 10.0  # the bound: nothing of a dead server remains 10 s later
# Bootstrap rounds that keep the child busy for tens of CPU seconds; the tests kill it long
# before it finishes.
SLOW_ROUNDS = 500_000
REGISTRY = """
models:
  - {name: orphan-one, provider: demo, params: {tokens_per_s: 4000, style: plain}}
  - {name: orphan-two, provider: demo, params: {tokens_per_s: 4000, style: lists}}
"""


def _is_child_process(pid: int) -> bool:
    return "arena.child_process" in command_line(pid)


# ---------------------------------------------------------------- the mechanism


def test_child_process_answers_in_another_process_and_reports_failures():
    child = ChildProcess()
    try:
        pid = child.call(os.getpid)
        assert pid != os.getpid() and child.pid == pid
        tree = process_tree(pid)
        with pytest.raises(ValueError, match="invalid literal"):
            child.call(functools.partial(int, "not a number"))
        # What the work prints goes to stderr, not into the answers.
        assert child.call(functools.partial(print, "noise on stdout")) is None
        with pytest.raises((pickle.PicklingError, AttributeError)):
            child.call(lambda: 1)  # does not pickle: refused here, the child untouched
        assert child.call(os.getpid) == pid  # the same child all along
    finally:
        child.close()
    assert child.pid is None and not still_running(tree)
    with pytest.raises(ChildDied):
        child.call(os.getpid)  # closed for good


def test_a_child_killed_mid_call_fails_that_call_and_the_next_gets_a_new_child():
    child = ChildProcess()
    outcome: list[BaseException] = []

    def slow_call() -> None:
        try:
            child.call(functools.partial(time.sleep, 600))
        except BaseException as e:
            outcome.append(e)

    caller = threading.Thread(target=slow_call)
    try:
        caller.start()
        pid = wait_until(lambda: child.pid, what="the child to start")
        os.kill(pid, signal.SIGKILL)
        caller.join(PROCESS_DEADLINE_S)
        assert not caller.is_alive() and isinstance(outcome[0], ChildDied)
        assert child.call(os.getpid) not in (pid, os.getpid())
    finally:
        child.close()
        caller.join(PROCESS_DEADLINE_S)


def test_closing_ends_a_busy_child_at_once():
    refresher = ArtifactRefresher(functools.partial(time.sleep, 600), in_child_process=True)
    refresher.request()
    pid = wait_until(lambda: refresher.child_pid, what="the recomputing child to start")
    tree = process_tree(pid)
    started = time.monotonic()
    refresher.close()
    assert time.monotonic() - started < PROCESS_DEADLINE_S
    assert not still_running(tree)
    assert isinstance(refresher.last_error, ChildDied)


PARENT = """
import functools, sys, time
from arena.child_process import ChildProcess
child = ChildProcess(nice=10)
print(child.call(__import__("os").getpid), flush=True)
child.call(functools.partial(time.sleep, 600))
"""


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_child_ends_when_its_parent_is_killed(how):
    parent = start_process([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    tree: set[tuple[int, int]] = set()
    try:
        child_pid = int(parent.stdout.readline())  # the child answered: it is running
        tree = process_tree(parent.pid)
        assert child_pid in {pid for pid, _ in tree}
        parent.send_signal(getattr(signal, how))
        parent.wait(PROCESS_DEADLINE_S)
        wait_until(
            lambda: not still_running(tree),
            timeout_s=ORPHAN_DEADLINE_S,
            what=f"the child to end after its parent's {how}",
        )
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        kill_tree(tree)


# ---------------------------------------------------------------- a real arena serve


def _seed_votes(url: str, count: int = 40) -> None:
    """Votes already in the store, so the server recomputes the board as it starts."""
    from arena.store.battles import create_battle
    from arena.store.conversations import add_message, battle_conversations
    from arena.store.db import Database
    from arena.store.migrate import upgrade
    from arena.store.sessions import create_session
    from arena.store.votes import record_vote

    upgrade(url)
    db = Database(url)
    models = ["seed-a", "seed-b", "seed-c", "seed-d"]
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    try:
        session = create_session(db, ttl_s=3600)
        for i in range(count):
            a, b = models[i % 4], models[(i + 1 + i // 4) % 4]
            b = models[(i + 2) % 4] if a == b else b
            battle = create_battle(
                db,
                mode="battle",
                model_a=a,
                model_b=b,
                session_id=session.id,
                now=t0 + timedelta(minutes=i),
            )
            for conv in battle_conversations(db, battle.id):
                add_message(db, conv.id, role="user", content=f"question {i}")
                add_message(db, conv.id, role="assistant", content="an answer")
            record_vote(
                db,
                battle.id,
                ["a", "b", "tie"][i % 3],
                session_id=session.id,
                now=t0 + timedelta(minutes=i, seconds=30),
            )
    finally:
        db.dispose()


class RecomputingServer:
    """``arena serve`` on SQLite with votes in store, stopped once its child is busy."""

    def __init__(self, tmp_path: Path) -> None:
        database_url = f"sqlite:///{tmp_path / 'arena.db'}"
        _seed_votes(database_url)
        registry = tmp_path / "arena.yaml"
        registry.write_text(REGISTRY)
        self.log = tmp_path / "serve.log"
        env = {
            **os.environ,
            "ARENA_DATA_DIR": str(tmp_path / "data"),
            "ARENA_DATABASE_URL": database_url,
            "ARENA_SECRET_KEY": "orphans-secret",
            "ARENA_LEADERBOARD_ROUNDS": str(SLOW_ROUNDS),
        }
        env.pop("ARENA_CONFIG_PATH", None)
        cmd = [*ARENA, "serve", "--port", str(free_port()), "--config", str(registry)]
        with self.log.open("wb") as log:
            self.proc = start_process(
                cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
            )
        self.tree: set[tuple[int, int]] = set()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_recomputation(self) -> int:
        """The child's pid, once it has spent a few CPU seconds inside the recomputation
        (starting an interpreter and importing the rating stack costs about 1.5)."""

        def busy_child() -> int | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"arena serve exited early:\n{self.output()[-3000:]}")
            for pid in children_of(self.proc.pid):
                if _is_child_process(pid) and cpu_seconds(pid) >= 3.0:
                    return pid
            return None

        child = wait_until(busy_child, what="the leaderboard child to be recomputing")
        self.tree = process_tree(self.proc.pid)
        return child

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        kill_tree(self.tree)


@pytest.fixture
def recomputing_server(tmp_path):
    server = RecomputingServer(tmp_path)
    try:
        yield server
    finally:
        server.close()


def test_arena_serve_killed_mid_recompute_leaves_no_process(recomputing_server):
    server = recomputing_server
    child = server.wait_for_recomputation()
    assert child in {pid for pid, _ in server.tree}
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(PROCESS_DEADLINE_S)
    left = wait_until(
        lambda: not still_running(server.tree),
        timeout_s=ORPHAN_DEADLINE_S,
        what="every process of the killed server to end",
    )
    assert left


def test_arena_serve_stopped_mid_recompute_exits_cleanly(recomputing_server):
    server = recomputing_server
    server.wait_for_recomputation()
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(PROCESS_DEADLINE_S)
    # uvicorn re-raises the signal once it has shut down cleanly.
    assert code in (0, -signal.SIGTERM), server.output()[-3000:]
    wait_until(
        lambda: not still_running(server.tree),
        timeout_s=ORPHAN_DEADLINE_S,
        what="every process of the stopped server to end",
    )
    output = server.output()
    assert "leaked semaphore" not in output and "resource_tracker" not in output, output
    assert "Traceback" not in output, output[-3000:]
