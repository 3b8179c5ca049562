"""Votes under pressure: many threads at once, racing double votes, and a writer process
killed with SIGKILL mid-run (every vote it acknowledged must still be there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter

from sqlalchemy import select

from arena.errors import Conflict
from arena.store.db import Database
from arena.store.models import Battle, Vote
from arena.store.records import new_token
from arena.store.votes import count_votes, record_vote
from support.processes import start_process

THREADS = 8
VOTES_PER_THREAD = 50
CONTESTED = 10


def _bulk_battles(db: Database, n: int) -> list[str]:
    """Battles inserted in one transaction (setup speed; votes still go through the repo)."""
    ids = [new_token() for _ in range(n)]
    with db.session() as s:
        s.add_all(Battle(id=b, mode="battle", model_a="x", model_b="y") for b in ids)
    return ids


def test_concurrent_votes_and_racing_double_votes(db) -> None:
    own = [_bulk_battles(db, VOTES_PER_THREAD) for _ in range(THREADS)]
    contested = _bulk_battles(db, CONTESTED)
    barrier = threading.Barrier(THREADS)
    wins: Counter[str] = Counter()
    conflicts: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def voter(index: int) -> None:
        try:
            for i, battle_id in enumerate(own[index]):
                if i % 5 == 0:  # every few votes, all threads pile onto one contested battle
                    target = contested[i // 5]
                    barrier.wait()
                    try:
                        record_vote(db, target, "ab"[index % 2], ip_hash=f"t{index}")
                        with lock:
                            wins[target] += 1
                    except Conflict:
                        with lock:
                            conflicts[target] += 1
                record_vote(db, battle_id, ("a", "b", "tie", "bothbad")[i % 4])
        except BaseException as e:
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=voter, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert all(wins[c] == 1 for c in contested), wins
    assert all(conflicts[c] == THREADS - 1 for c in contested), conflicts

    with db.session() as s:
        stored = Counter(s.scalars(select(Vote.battle_id)))
    expected = {b for ids in own for b in ids} | set(contested)
    assert set(stored) == expected
    assert set(stored.values()) == {1}
    assert count_votes(db) == THREADS * VOTES_PER_THREAD + CONTESTED


WRITER = """
import sys
from arena.store.votes import record_vote
from arena.store.db import Database

db = Database(sys.argv[1])
for battle_id in sys.stdin.read().split():
    record_vote(db, battle_id, "a", ip_hash="writer")
    sys.stdout.write(battle_id + "\\n")
    sys.stdout.flush()
print("DONE", flush=True)
"""


def test_acknowledged_votes_survive_sigkill(db) -> None:
    battle_ids = _bulk_battles(db, 3000)  # far more than the writer gets through
    url = db.url
    db.dispose()
    proc = start_process(
        [sys.executable, "-c", WRITER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n".join(battle_ids))
    proc.stdin.close()
    acknowledged: list[str] = []
    try:
        for line in proc.stdout:
            line = line.strip()
            assert line != "DONE", "the writer finished before it could be killed"
            acknowledged.append(line)
            if len(acknowledged) == 150:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(acknowledged) == 150

    reopened = Database(url)
    try:
        with reopened.session(read_only=True) as s:
            stored = Counter(s.scalars(select(Vote.battle_id)))
        for battle_id in acknowledged:
            assert stored[battle_id] == 1, battle_id
        # The writer may have committed (and printed) a few more than we read before the
        # kill landed; those are a prefix of its list, each present once, and it was cut off.
        assert set(stored.values()) == {1}
        assert len(acknowledged) <= len(stored) < len(battle_ids)
        assert set(stored) == set(battle_ids[: len(stored)])
        record_vote(reopened, battle_ids[-1], "b")  # the database is still usable
    finally:
        reopened.dispose()
