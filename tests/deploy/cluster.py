"""Real deployments for the deploy tests: ``arena serve`` replicas as subprocesses on one
database and Redis, a stand-in upstream they share, and HAProxy in front of them built from
the ```haproxy block of docs/deployment.md (so the documented config is the tested one).

Every process started here is stopped by the context manager that started it; a replica a
test killed is only reaped.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support.processes import PROCESS_DEADLINE_S, free_port, start_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT_DOC = ROOT / "docs" / "deployment.md"
ARENA = shutil.which("arena") or "arena"
SECRET = "deploy-test-shared-secret"
UNLIMITED = "100000/minute"
MODELS = ("standin-left", "standin-right")


def registry_yaml(upstream: str) -> str:
    """Two vision-capable models served by the OpenAI-compatible stand-in at ``upstream``."""
    lines = ["models:"]
    for name in MODELS:
        lines.append(
            f"  - {{name: {name}, provider: openai_compatible, base_url: {upstream}/v1, "
            "capabilities: [text, vision]}"
        )
    return "\n".join(lines) + "\n"


@dataclass
class Replica:
    """One ``arena serve`` process with its own data dir and port."""

    name: str
    workdir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def launch(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = start_process(
                [ARENA, "serve", "--port", str(self.port), "--log-level", "warning"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.log_tail()}")
        try:
            return httpx.get(self.url + "/health", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self) -> None:
        wait_until(self.healthy, what=f"{self.name} to answer /health", interval_s=0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown code of the server runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=PROCESS_DEADLINE_S)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=PROCESS_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def replica_env(
    workdir: Path,
    *,
    database_url: str,
    registry: Path,
    redis_url: str,
    secret: str = SECRET,
    **extra: str,
) -> dict[str, str]:
    """The environment of one replica: everything replicas must share, plus its own
    data dir. Limits are lifted so a test's many requests from one address pass."""
    env = {
        **os.environ,
        "ARENA_DATA_DIR": str(workdir / "data"),
        "ARENA_DATABASE_URL": database_url,
        "ARENA_CONFIG_PATH": str(registry),
        "ARENA_REDIS_URL": redis_url,
        "ARENA_SECRET_KEY": secret,
        "ARENA_LEADERBOARD_REFRESH_S": "0.5",
        "ARENA_LEADERBOARD_ROUNDS": "10",
        "ARENA_HEALTH_INTERVAL_S": "3600",
        **{
            f"ARENA_{kind}_PER_{who}": UNLIMITED
            for kind in ("REQUESTS", "VOTES", "UPLOADS")
            for who in ("SESSION", "IP")
        },
    }
    env.update(extra)
    return env


@contextlib.contextmanager
def replicas(
    tmp: Path, count: int, *, database_url: str, registry: Path, redis_url: str, **extra: str
) -> Iterator[list[Replica]]:
    """``count`` replicas on one database, started together; stopped (or reaped) on exit."""
    started: list[Replica] = []
    try:
        for n in range(1, count + 1):
            workdir = tmp / f"replica-{n}"
            env = replica_env(
                workdir,
                database_url=database_url,
                registry=registry,
                redis_url=redis_url,
                **extra,
            )
            replica = Replica(f"replica-{n}", workdir, env)
            replica.launch()
            started.append(replica)
        for replica in started:
            replica.wait_ready()
        yield started
    finally:
        for replica in started:
            replica.stop()


# ---------------------------------------------------------------- HAProxy


def documented_haproxy_config() -> str:
    """The one ```haproxy fenced block of docs/deployment.md."""
    text = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```haproxy\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) == 1, "docs/deployment.md must hold exactly one ```haproxy block"
    return blocks[0]


# What the test puts in place of the documented addresses and paths; each must be found.
DOC_PLACEHOLDERS = {
    "http_bind": "bind :80",
    "https_bind": "bind :443 ssl crt /etc/haproxy/certs/arena.pem",
    "stats_socket": "/run/haproxy/admin.sock",
    "replica_1": "10.0.0.11:8000",
    "replica_2": "10.0.0.12:8000",
}


def fill_in(config: str, values: dict[str, str]) -> str:
    for key, placeholder in DOC_PLACEHOLDERS.items():
        assert placeholder in config, f"the documented config lost {placeholder!r}"
        config = config.replace(placeholder, values[key])
    return config


def self_signed_pem(folder: Path) -> Path:
    """A certificate for 127.0.0.1 and its key in ``arena.pem``, one file as HAProxy wants
    it; returns the certificate alone (what a client trusts)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    pem = folder / "arena.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return cert


@dataclass
class Balancer:
    https_url: str
    http_url: str
    cert: Path
    stats_socket: Path
    proc: subprocess.Popen

    def show_stat(self) -> list[dict[str, str]]:
        """HAProxy's per-proxy and per-server counters, from its stats socket."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(self.stats_socket))
            s.sendall(b"show stat\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode().lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def servers(self) -> dict[str, dict[str, str]]:
        return {
            row["svname"]: row
            for row in self.show_stat()
            if row["pxname"] == "arena_replicas" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def answered(self) -> dict[str, int]:
        """Responses each replica gave through the balancer so far."""
        return {
            name: sum(int(row[f"hrsp_{c}xx"] or 0) for c in range(1, 6))
            for name, row in self.servers().items()
        }


def haproxy_binary() -> str:
    """HAProxy's path; skips the test where it is not installed, except in CI (.ci/run
    installs it)."""
    import pytest

    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        if os.environ.get("CI"):
            raise RuntimeError("haproxy is not installed (apt-get install -y haproxy)")
        pytest.skip("haproxy is not installed (apt-get install -y haproxy)")
    return found


@contextlib.contextmanager
def haproxy(
    tmp: Path, backends: list[Replica], *, source_address: str | None = None
) -> Iterator[Balancer]:
    """HAProxy with the documented config, TLS on a self-signed certificate.

    ``source_address``: connect to the replicas from this local address (another loopback
    address than clients use, so replicas can tell the balancer from a client)."""
    assert len(backends) == 2, "the documented config names two replicas"
    haproxy_bin = haproxy_binary()
    tmp.mkdir(parents=True, exist_ok=True)
    cert = self_signed_pem(tmp)
    https_port, http_port = free_port(), free_port()
    stats = tmp / "admin.sock"
    config = fill_in(
        documented_haproxy_config(),
        {
            "http_bind": f"bind 127.0.0.1:{http_port}",
            "https_bind": f"bind 127.0.0.1:{https_port} ssl crt {tmp / 'arena.pem'}",
            "stats_socket": str(stats),
            "replica_1": f"127.0.0.1:{backends[0].port}",
            "replica_2": f"127.0.0.1:{backends[1].port}",
        },
    )
    if source_address is not None:
        assert "    balance roundrobin\n" in config
        config = config.replace(
            "    balance roundrobin\n", f"    balance roundrobin\n    source {source_address}\n"
        )
    path = tmp / "haproxy.cfg"
    path.write_text(config)
    checked = subprocess.run([haproxy_bin, "-c", "-f", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, f"haproxy rejects the documented config:\n{checked.stdout}"
    log = tmp / "haproxy.log"
    with log.open("ab") as out:
        proc = start_process(
            [haproxy_bin, "-db", "-f", str(path)], stdout=out, stderr=subprocess.STDOUT
        )
    balancer = Balancer(
        f"https://127.0.0.1:{https_port}", f"http://127.0.0.1:{http_port}", cert, stats, proc
    )
    try:

        def all_up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"haproxy exited:\n{log.read_text()[-3000:]}")
            if not stats.exists():
                return False
            servers = balancer.servers()
            return len(servers) == 2 and all(r["status"] == "UP" for r in servers.values())

        wait_until(all_up, what="haproxy to see both replicas UP", interval_s=0.1)
        yield balancer
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=PROCESS_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
