"""Acknowledged votes per second: each vote is committed (and on SQLite fsynced) before
``record_vote`` returns. Compares SQLite synchronous=FULL (what Arena uses) with NORMAL, and
PostgreSQL when a server answers.

    python benchmarks/store_votes.py [--votes 2000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import event

from arena.store.db import Database
from arena.store.migrate import upgrade
from arena.store.models import Base, Battle
from arena.store.records import new_token
from arena.store.votes import record_vote


def _battles(db: Database, n: int) -> list[str]:
    ids = [new_token() for _ in range(n)]
    with db.session() as s:
        s.add_all(Battle(id=i, mode="battle", model_a="x", model_b="y") for i in ids)
    return ids


def _run(db: Database, ids: list[str], threads: int) -> float:
    chunks = [ids[i::threads] for i in range(threads)]

    def work(chunk: list[str]) -> None:
        for battle_id in chunk:
            record_vote(db, battle_id, "a", ip_hash="bench")

    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return len(ids) / (time.perf_counter() - start)


def _case(url: str, label: str, votes: int, synchronous: str | None = None) -> None:
    upgrade(url)
    db = Database(url)
    if synchronous:

        @event.listens_for(db.engine, "connect")
        def _sync(dbapi_connection, _record):  # runs after Arena's own PRAGMAs
            dbapi_connection.execute(f"PRAGMA synchronous = {synchronous}")

    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    for threads in (1, 8):
        rate = _run(db, _battles(db, votes), threads)
        print(f"| {label} | {threads} | {votes} | {rate:,.0f} |")
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--votes", type=int, default=2000)
    parser.add_argument("--postgres", default=None, help="URL of an empty scratch database")
    args = parser.parse_args()
    print("| database | threads | votes | acknowledged votes/s |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        _case(f"sqlite:///{Path(tmp) / 'full.db'}", "SQLite WAL, synchronous=FULL", args.votes)
        _case(
            f"sqlite:///{Path(tmp) / 'normal.db'}",
            "SQLite WAL, synchronous=NORMAL",
            args.votes,
            synchronous="NORMAL",
        )
    if args.postgres:
        _case(args.postgres, "PostgreSQL (psycopg 3)", args.votes)


if __name__ == "__main__":
    main()
