"""Votes survive a killed server: ``arena serve`` (SQLite, then PostgreSQL) is SIGKILLed
while many clients vote; after a restart every acknowledged vote is in the database, no
battle has two votes, and re-sending the unacknowledged ones never duplicates them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from support.processes import PROCESS_DEADLINE_S, start_process, wait_until
from support.web_fakes import parse_sse

pytestmark = pytest.mark.slow

CLIENTS = 12
KILL_AFTER_ACKS = 40
REGISTRY = """
models:
  - {name: durable-one, provider: demo, params: {tokens_per_s: 4000, style: plain}}
  - {name: durable-two, provider: demo, params: {tokens_per_s: 4000, style: lists}}
  - {name: durable-three, provider: demo, params: {tokens_per_s: 4000, style: bold}}
"""
SERVE = [shutil.which("arena") or "arena", "serve"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        registry = tmp_path / "arena.yaml"
        registry.write_text(REGISTRY)
        self.log = tmp_path / "serve.log"
        self.cmd = [*SERVE, "--port", str(self.port), "--config", str(registry)]
        self.env = {
            **os.environ,
            "ARENA_DATA_DIR": str(tmp_path / "data"),
            "ARENA_DATABASE_URL": database_url,
            "ARENA_SECRET_KEY": "durability-secret",
            "ARENA_REQUESTS_PER_SESSION": "100000/minute",
            "ARENA_REQUESTS_PER_IP": "100000/minute",
            "ARENA_VOTES_PER_SESSION": "100000/minute",
            "ARENA_VOTES_PER_IP": "100000/minute",
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = start_process(
                self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.log.parent
            )
        deadline = time.monotonic() + PROCESS_DEADLINE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"arena serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                status = httpx.get(self.url + "/api/session", timeout=10).status_code
                if status == 200:
                    return
                if status == 404:
                    raise RuntimeError("arena serve is up but does not include the web app")
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"arena serve did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=PROCESS_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Voter(threading.Thread):
    """Plays battles and votes until told to stop; keeps what was acknowledged."""

    def __init__(self, url: str, stop: threading.Event, acks: list, index: int) -> None:
        super().__init__(daemon=True)
        self.url, self.stop_event, self.acks, self.index = url, stop, acks, index
        self.pending: list[tuple[str, str]] = []  # sent, no answer (server died)
        self.cookies: httpx.Cookies | None = None
        self.csrf = ""

    def run(self) -> None:
        votes = ["a", "b", "tie", "bothbad"]
        try:
            with httpx.Client(base_url=self.url, timeout=60) as http:
                http.get("/api/session")
                self.cookies, self.csrf = http.cookies, http.cookies["arena_csrf"]
                headers = {"X-CSRF-Token": self.csrf}
                n = 0
                while not self.stop_event.is_set():
                    battle = http.post("/api/battles", json={}, headers=headers).json()["battle_id"]
                    answer = http.post(
                        f"/api/battles/{battle}/messages", json={"text": f"q{n}"}, headers=headers
                    )
                    assert parse_sse(answer.content)[-1].event == "end"
                    vote = votes[(n + self.index) % 4]
                    try:
                        response = http.post(
                            f"/api/battles/{battle}/vote", json={"vote": vote}, headers=headers
                        )
                    except httpx.HTTPError:
                        self.pending.append((battle, vote))
                        return
                    assert response.status_code == 200, response.text
                    self.acks.append((battle, vote))
                    n += 1
        except httpx.HTTPError:
            return  # the server died before the vote was sent


def _run(tmp_path: Path, database_url: str) -> None:
    server = Server(tmp_path, database_url)
    server.start()
    try:
        stop, acks = threading.Event(), []
        voters = [Voter(server.url, stop, acks, i) for i in range(CLIENTS)]
        for v in voters:
            v.start()
        wait_until(
            lambda: len(acks) >= KILL_AFTER_ACKS or not any(v.is_alive() for v in voters),
            what=f"{KILL_AFTER_ACKS} acknowledged votes",
            interval_s=0.01,
        )
        server.kill()  # SIGKILL while votes are in flight
        stop.set()
        for v in voters:
            v.join(timeout=PROCESS_DEADLINE_S)
        acknowledged = list(acks)
        assert len(acknowledged) >= KILL_AFTER_ACKS

        server.start()  # same database, same secret: the sessions are still valid
        resent_ok = []
        for v in voters:
            for battle, vote in v.pending:
                r = httpx.post(
                    f"{server.url}/api/battles/{battle}/vote",
                    json={"vote": vote},
                    headers={"X-CSRF-Token": v.csrf},
                    cookies=v.cookies,
                    timeout=10,
                )
                assert r.status_code in (200, 409), r.text  # 409: it had been committed
                if r.status_code == 200:
                    resent_ok.append((battle, vote))
    finally:
        server.stop()

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT battle_id, type FROM votes WHERE message_id IS NULL")
        ).all()
    engine.dispose()
    stored = [(r[0], r[1]) for r in rows]
    assert len(stored) == len(set(b for b, _ in stored)), "a battle has two votes"
    missing = set(acknowledged) - set(stored)
    assert not missing, f"{len(missing)} acknowledged votes were lost"
    assert set(resent_ok) <= set(stored)


def test_sqlite_votes_survive_sigkill(tmp_path):
    _run(tmp_path, f"sqlite:///{tmp_path / 'arena.db'}")


@pytest.mark.postgres
def test_postgres_votes_survive_sigkill(tmp_path, postgres_url):
    _run(tmp_path, postgres_url)
