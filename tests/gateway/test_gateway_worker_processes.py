"""``arena worker`` as real subprocesses serving a tiny transformers model built in the test,
registered with a real gateway: streaming through the gateway, a gateway restart, and a
worker SIGKILLed mid-stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn

from arena.config import Settings
from support.processes import PROCESS_DEADLINE_S, start_process, wait_until
from support.servers import serve_app
from support.tiny_model import build_tiny_model

pytestmark = pytest.mark.local

ARENA = [sys.executable, "-c", "from arena.cli import app; app()"]
USER = [{"role": "user", "content": "Say hello"}]
# With this seed the random tiny model runs to max_tokens instead of stopping early.
LONG_SEED = 2


class GatewayThread:
    """A real gateway on a loopback port that survives restarts (same port each time)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = 0
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, settings: Settings | None = None) -> None:
        from arena.server import create_server_app

        self.settings = settings or self.settings
        app = create_server_app(self.settings, providers={})
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + PROCESS_DEADLINE_S
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "gateway start failed"
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(timeout=PROCESS_DEADLINE_S)


def _settings(tmp: Path, name: str) -> Settings:
    return Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / name}",
        request_timeout_s=30,
        first_token_timeout_s=10,
        stream_idle_timeout_s=5,
        heartbeat_interval_s=0.3,
        # A worker busy generating on a loaded machine may miss heartbeats for seconds; no
        # test here waits for an expiry.
        heartbeat_expiry_s=60.0,
    )


def _workers(gateway: GatewayThread) -> list[dict]:
    try:
        return httpx.get(gateway.url + "/internal/workers", timeout=30).json()["data"]
    except httpx.HTTPError:
        return []


def _wait_for(predicate, what: str, timeout_s: float = PROCESS_DEADLINE_S) -> None:
    wait_until(predicate, what=what, interval_s=0.1, timeout_s=timeout_s)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def cluster(tiny_model, tmp_path_factory) -> Iterator[tuple[GatewayThread, dict]]:
    """A gateway and two ``arena worker --model`` subprocesses serving ``tiny``."""
    tmp = tmp_path_factory.mktemp("cluster")
    gateway = GatewayThread(_settings(tmp, "first.db"))
    gateway.start()
    env = {**os.environ, "ARENA_HEARTBEAT_INTERVAL_S": "0.3", "TOKENIZERS_PARALLELISM": "false"}
    processes: dict[str, subprocess.Popen] = {}
    logs = {}
    for worker_id in ("w-a", "w-b"):
        logs[worker_id] = open(tmp / f"{worker_id}.log", "w")  # noqa: SIM115
        processes[worker_id] = start_process(
            [*ARENA, "worker", "--model", str(tiny_model), "--name", "tiny",
             "--gateway", gateway.url, "--worker-id", worker_id, "--device", "cpu"],
            env=env,
            stdout=logs[worker_id],
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for(lambda: len(_workers(gateway)) == 2, "both workers to register")
        yield gateway, processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for worker_id, process in processes.items():
            try:
                process.wait(timeout=PROCESS_DEADLINE_S)
            except subprocess.TimeoutExpired:
                process.kill()
            logs[worker_id].close()
        gateway.stop()


def _sdk(gateway: GatewayThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=30)


def test_worker_model_streams_through_the_gateway(cluster):
    gateway, _ = cluster
    sdk = _sdk(gateway)
    assert "tiny" in [m.id for m in sdk.models.list()]
    chunks = list(
        sdk.chat.completions.create(
            model="tiny",
            messages=USER,
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    usage = chunks[-1].usage
    assert 0 < usage.completion_tokens <= 12 and usage.prompt_tokens > 0
    folded = sdk.chat.completions.create(model="tiny", messages=USER, max_tokens=5)
    assert folded.usage.completion_tokens <= 5
    vectors = sdk.embeddings.create(model="tiny", input="hello", encoding_format="float")
    assert len(vectors.data[0].embedding) == 48  # the tiny model's hidden size


def test_gateway_restart_with_workers_alive(cluster, tmp_path):
    gateway, _ = cluster
    gateway.stop()
    # A fresh database: the new gateway knows no worker, so heartbeats are answered
    # "unknown worker" and both workers register again.
    gateway.start(
        gateway.settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/b.db"})
    )
    _wait_for(lambda: len(_workers(gateway)) == 2, "workers to re-register")
    reply = _sdk(gateway).chat.completions.create(model="tiny", messages=USER, max_tokens=5)
    assert reply.choices[0].message.content is not None


def test_worker_killed_mid_stream(cluster):
    gateway, processes = cluster
    started = time.monotonic()
    events: list[str] = []
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={
            "model": "tiny",
            "messages": USER,
            "stream": True,
            "max_tokens": 230,
            "seed": LONG_SEED,
        },
        timeout=30,
    ) as response:
        victim = response.headers["x-arena-backend"]
        for line in response.iter_lines():
            if not line:
                continue
            events.append(line)
            if '"content":"' in line and len(events) == 2:
                processes[victim].send_signal(signal.SIGKILL)
    assert time.monotonic() - started < 25  # an error, not a hang to request_timeout_s (30 s)
    assert events[-1].startswith('data: {"error"'), events[-3:]
    assert "data: [DONE]" not in events
    processes[victim].wait(timeout=PROCESS_DEADLINE_S)

    survivor = ({"w-a", "w-b"} - {victim}).pop()
    reply = _sdk(gateway).chat.completions.with_raw_response.create(
        model="tiny", messages=USER, max_tokens=5
    )
    assert reply.headers["x-arena-backend"] == survivor
    assert reply.parse().choices[0].message.content is not None
    assert httpx.get(gateway.url + "/health").status_code == 200


def test_stopped_worker_deregisters(cluster):
    gateway, processes = cluster
    alive = [wid for wid, process in processes.items() if process.poll() is None]
    assert alive
    for worker_id in alive:
        processes[worker_id].send_signal(signal.SIGTERM)
        processes[worker_id].wait(timeout=PROCESS_DEADLINE_S)
    # A clean stop leaves the registry at once (the SIGKILLed one only expires).
    # (Well inside heartbeat_expiry_s, so an expiry cannot pass for a deregistration.)
    _wait_for(
        lambda: not {w["worker_id"] for w in _workers(gateway)} & set(alive),
        "deregistration",
        timeout_s=30,
    )


def test_disconnect_cancels_the_workers_generation(tiny_model):
    """A client leaving a worker's stream stops the decode loop (no more forward passes)."""
    from arena.providers.local import LocalProvider
    from arena.worker import create_worker_app

    provider = LocalProvider(str(tiny_model), name="tiny", device="cpu")
    asyncio.run(provider.load())
    app = create_worker_app(Settings(), provider, model_name="tiny")
    with serve_app(app) as url:
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            json={
                "model": "tiny",
                "messages": USER,
                "stream": True,
                "max_tokens": 230,
                "seed": LONG_SEED,
            },
            timeout=30,
        ) as response:
            for line in response.iter_lines():
                if '"content":"' in line:
                    break
        _wait_for(lambda: provider.running == 0, "the generation to stop")
        steps = provider.steps
        time.sleep(0.3)
        assert provider.steps == steps
        assert steps < 100  # it ran to 230 tokens when nobody left
        assert app.state.gateway.in_flight == 0
