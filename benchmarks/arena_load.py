"""Load test of the arena web app: simulated users play whole battles against stand-in
models that stream at a fixed rate.

Each user opens a session, then loops: create a battle, send a message and read both
answers from the SSE stream to the end, vote. The server is the real web app (uvicorn,
one process) on SQLite or PostgreSQL; the models are in-process stand-ins streaming
``--tokens`` pieces at ``--token-interval`` seconds each, so the load is the arena's own
work (sessions, CSRF, limits, state machine, database writes, SSE), not model compute.

Reported per level of concurrent users: completed battles per second, vote latency p50 and
p99 (the time to an acknowledged, committed vote), and the error count.

    python benchmarks/arena_load.py --users 50,200,500 --duration 20 \
        --database sqlite --database postgresql://postgres@127.0.0.1:5432/bench

The server is started as a subprocess of this script (``serve`` mode), on a free loopback
port, with rate limits raised so that the limits do not refuse the simulated crowd.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# ---------------------------------------------------------------- server side


def _stand_in_providers(names: list[str], tokens: int, interval_s: float) -> dict:
    from arena.providers.base import Delta, Provider, ProviderInfo, TokenUsage

    class FixedRateProvider(Provider):
        """Streams ``tokens`` words, one every ``interval_s`` seconds."""

        def __init__(self, name: str) -> None:
            self.info = ProviderInfo(kind="openai_compatible", upstream_model=name)

        async def stream_chat(self, request) -> AsyncIterator[Delta]:  # type: ignore[override]
            for i in range(tokens):
                await asyncio.sleep(interval_s)
                yield Delta(text=f"word{i} ")
            yield Delta(finish_reason="stop")
            yield Delta(usage=TokenUsage(prompt_tokens=8, completion_tokens=tokens))

    return {name: FixedRateProvider(name) for name in names}


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from arena.config import Settings
    from arena.providers.registry import ModelSpec
    from arena.web.app import create_web_app

    names = [f"bench-model-{i}" for i in range(4)]
    specs = [
        ModelSpec(name=n, provider="openai_compatible", base_url="http://127.0.0.1:9/v1")
        for n in names
    ]
    unlimited = "1000000/minute"
    settings = Settings(
        data_dir=Path(args.data_dir),
        database_url=args.database_url,
        secret_key="bench-secret",
        requests_per_session=unlimited,
        requests_per_ip=unlimited,
        votes_per_session=unlimited,
        votes_per_ip=unlimited,
    )
    app = create_web_app(
        settings,
        registry=specs,
        providers=_stand_in_providers(names, args.tokens, args.token_interval),
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        backlog=4096,
    )


# ---------------------------------------------------------------- load side


@dataclass
class Tally:
    battles: int = 0
    errors: int = 0
    vote_latencies: list[float] = field(default_factory=list)
    vote_server_ms: list[float] = field(default_factory=list)
    create_latencies: list[float] = field(default_factory=list)
    turn_seconds: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(what)


async def user(
    base: str, measure_from: float, stop_at: float, tally: Tally, limits: httpx.Limits
) -> None:
    """One simulated person; only battles finished after ``measure_from`` are counted."""
    await asyncio.sleep(random.uniform(0, 2.0))  # people do not all arrive at once
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as http:
        try:
            await http.get("/api/session")
        except httpx.HTTPError as e:
            tally.error(f"session: {e!r}")
            return
        headers = {"X-CSRF-Token": http.cookies.get("arena_csrf", "")}
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            try:
                t0 = time.perf_counter()
                r = await http.post("/api/battles", json={"mode": "battle"}, headers=headers)
                if time.monotonic() >= measure_from:
                    tally.create_latencies.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    tally.error(f"create {r.status_code}: {r.text[:120]}")
                    continue
                battle = r.json()["battle_id"]
                ended = False
                t0 = time.perf_counter()
                async with http.stream(
                    "POST",
                    f"/api/battles/{battle}/messages",
                    json={"text": f"question {n}"},
                    headers=headers,
                ) as s:
                    if s.status_code != 200:
                        tally.error(f"message {s.status_code}")
                        continue
                    async for line in s.aiter_lines():
                        if line == "event: end":
                            ended = True
                        elif line == "event: error":
                            tally.error("side error event")
                if not ended:
                    tally.error("stream ended without 'end'")
                    continue
                if time.monotonic() >= measure_from:
                    tally.turn_seconds.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                r = await http.post(
                    f"/api/battles/{battle}/vote", json={"vote": "a"}, headers=headers
                )
                latency = time.perf_counter() - t0
                if r.status_code != 200:
                    tally.error(f"vote {r.status_code}: {r.text[:120]}")
                    continue
                if time.monotonic() >= measure_from:
                    tally.vote_latencies.append(latency)
                    tally.vote_server_ms.append(_server_ms(r))
                    tally.battles += 1
            except httpx.HTTPError as e:
                tally.error(f"{type(e).__name__}: {e}")


def _server_ms(response: httpx.Response) -> float:
    """The server's own handling time, from its ``Server-Timing: app;dur=...`` header."""
    for part in response.headers.get("server-timing", "").split(";"):
        if part.strip().startswith("dur="):
            return float(part.strip()[4:])
    return float("nan")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


async def play(base: str, users: int, measure_from_wall: float, duration: float) -> Tally:
    """``users`` people in this process; counting starts at wall-clock ``measure_from_wall``
    (shared by every client process)."""
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    tally = Tally()
    started = time.monotonic() + (measure_from_wall - time.time())
    await asyncio.gather(
        *(user(base, started, started + duration, tally, limits) for _ in range(users))
    )
    return tally


def _play_in_process(base: str, users: int, measure_from_wall: float, duration: float) -> Tally:
    return asyncio.run(play(base, users, measure_from_wall, duration))


def run_level(base: str, users: int, duration: float, warmup: float, procs: int) -> dict:
    """``users`` people play without pause for ``warmup + duration`` seconds, spread over
    ``procs`` client processes (one Python event loop cannot drive hundreds of streams
    without its own lag showing up in the latencies); the figures cover the last
    ``duration`` seconds (steady state, arrivals spread out)."""
    from concurrent.futures import ProcessPoolExecutor

    measure_from = time.time() + warmup + 1.0
    shares = [users // procs + (1 if i < users % procs else 0) for i in range(procs)]
    with ProcessPoolExecutor(max_workers=procs) as pool:
        parts = list(
            pool.map(
                _play_in_process,
                [base] * procs,
                shares,
                [measure_from] * procs,
                [duration] * procs,
            )
        )
    tally = Tally()
    for part in parts:
        tally.battles += part.battles
        tally.errors += part.errors
        tally.vote_latencies += part.vote_latencies
        tally.vote_server_ms += part.vote_server_ms
        tally.create_latencies += part.create_latencies
        tally.turn_seconds += part.turn_seconds
        tally.error_samples += part.error_samples[: 5 - len(tally.error_samples)]
    elapsed = duration
    return {
        "users": users,
        "seconds": round(elapsed, 1),
        "battles": tally.battles,
        "battles_per_s": round(tally.battles / elapsed, 1),
        "vote_p50_ms": round(_percentile(tally.vote_latencies, 50) * 1000, 1),
        "vote_p99_ms": round(_percentile(tally.vote_latencies, 99) * 1000, 1),
        "errors": tally.errors,
        "vote_server_p50_ms": round(_percentile(tally.vote_server_ms, 50), 1),
        "vote_server_p99_ms": round(_percentile(tally.vote_server_ms, 99), 1),
        "create_p50_ms": round(_percentile(tally.create_latencies, 50) * 1000, 1),
        "turn_p50_s": round(_percentile(tally.turn_seconds, 50), 2),
        "turn_p99_s": round(_percentile(tally.turn_seconds, 99), 2),
        "error_samples": tally.error_samples,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(args: argparse.Namespace, database: str, data_dir: str) -> tuple:
    port = _free_port()
    url = database if database != "sqlite" else f"sqlite:///{data_dir}/arena.db"
    cmd = [
        sys.executable,
        __file__,
        "serve",
        "--port",
        str(port),
        "--database-url",
        url,
        "--data-dir",
        data_dir,
        "--tokens",
        str(args.tokens),
        "--token-interval",
        str(args.token_interval),
    ]
    if args.server_cpus:
        cmd = ["taskset", "-c", args.server_cpus, *cmd]
    proc = subprocess.Popen(cmd)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/api/session", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the arena server did not start")


def _fresh_postgres(url: str) -> str:
    """A new empty database next to ``url``'s (dropped by the caller's cleanup)."""
    import uuid

    import psycopg

    name = f"arena_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name


def _drop_postgres(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench(args: argparse.Namespace) -> None:
    levels = [int(x) for x in args.users.split(",")]
    results = []
    for database in args.database:
        for users in levels:
            with tempfile.TemporaryDirectory() as data_dir:
                db_url = database
                if database != "sqlite":
                    db_url = _fresh_postgres(database)
                proc, base = _start_server(args, db_url, data_dir)
                try:
                    row = run_level(base, users, args.duration, args.warmup, args.client_procs)
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
                    if database != "sqlite":
                        _drop_postgres(database, db_url)
                row["database"] = "sqlite" if database == "sqlite" else "postgresql"
                results.append(row)
                print(json.dumps(row), flush=True)
    print()
    print(
        "| database | users | battles/s | vote p50 / p99 (ms, client) "
        "| vote p50 / p99 (ms, server) | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['database']} | {r['users']} | {r['battles_per_s']} "
            f"| {r['vote_p50_ms']} / {r['vote_p99_ms']} "
            f"| {r['vote_server_p50_ms']} / {r['vote_server_p99_ms']} | {r['errors']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    s = sub.add_parser("serve", help="(internal) run the server under test")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--database-url", required=True)
    s.add_argument("--data-dir", required=True)
    s.add_argument("--tokens", type=int, default=20)
    s.add_argument("--token-interval", type=float, default=0.05)
    parser.add_argument("--users", default="50,200,500")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--tokens", type=int, default=20, help="pieces per answer")
    parser.add_argument("--token-interval", type=float, default=0.05, help="seconds between pieces")
    parser.add_argument(
        "--database",
        action="append",
        help="'sqlite' or a PostgreSQL admin URL (a fresh database is made per level)",
    )
    parser.add_argument(
        "--client-procs", type=int, default=2, help="processes that run the simulated users"
    )
    parser.add_argument(
        "--server-cpus", default=None, help="pin the server with taskset, e.g. '0,1'"
    )
    args = parser.parse_args()
    if args.mode == "serve":
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        serve(args)
        return
    args.database = args.database or ["sqlite"]
    bench(args)


if __name__ == "__main__":
    main()
