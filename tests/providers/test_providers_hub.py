"""The embedded default registry's Hub models: offered when cached here or when the Hub
answers, run by the local provider, and played in a battle by a real ``arena serve``.

No Hub is reachable from here, so a local cache is laid out the way the Hub library lays it
out (``models--owner--name/snapshots/<commit>/``, ``refs/main``), and a loopback stand-in
answers the Hub's model-info API (``GET /api/models/{id}``) in its JSON shape.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from arena.config import Settings
from arena.providers.hub_models import hub_specs, is_cached, public_name
from arena.providers.registry import default_registry
from support.processes import PROCESS_DEADLINE_S, start_process, wait_until
from support.servers import serve_app
from support.web_fakes import ArenaClient

pytestmark = pytest.mark.local
COMMIT = "0123456789abcdef0123456789abcdef01234567"
ARENA = [sys.executable, "-c", "from arena.cli import app; app()"]


def cache_model(cache: Path, repo_id: str, model_dir: Path) -> None:
    """Put ``model_dir``'s files in ``cache`` as the Hub library would have."""
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = folder / "snapshots" / COMMIT
    shutil.copytree(model_dir, snapshot, dirs_exist_ok=True)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def hub_standin(monkeypatch):
    """A Hub that knows one model (arena-test/remote-chat) and nothing else."""
    app = FastAPI()
    asked: list[str] = []

    @app.get("/api/models/{repo_id:path}")
    def model_info(repo_id: str):  # type: ignore[no-untyped-def]
        asked.append(repo_id)
        if repo_id != "arena-test/remote-chat":
            return JSONResponse({"error": "Repository not found"}, status_code=404)
        return {"id": repo_id, "sha": COMMIT, "cardData": {"license": "apache-2.0"}}

    with serve_app(app) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        yield asked


def test_cached_models_are_offered_offline(tiny_model_path, hub_cache):
    cache_model(hub_cache, "arena-test/tiny-chat", tiny_model_path)
    assert is_cached("arena-test/tiny-chat") and not is_cached("arena-test/missing")
    specs = hub_specs(["arena-test/tiny-chat", "arena-test/missing"])
    assert [s.name for s in specs] == ["tiny-chat"]
    spec = specs[0]
    assert spec.provider == "local" and spec.model_path == "arena-test/tiny-chat"
    assert spec.organization == "arena-test" and "arena-test/tiny-chat" in spec.aliases


def test_a_model_the_hub_answers_for_is_offered_and_others_are_not(hub_cache, hub_standin):
    specs = hub_specs(["arena-test/remote-chat", "arena-test/unknown"])
    assert [s.name for s in specs] == ["remote-chat"]
    assert specs[0].license == "apache-2.0"
    assert "downloaded from the Hub" in specs[0].description
    assert hub_standin == ["arena-test/remote-chat", "arena-test/unknown"]


def test_an_unreachable_hub_costs_little_and_offers_nothing(hub_cache, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    started = time.monotonic()
    assert hub_specs(["arena-test/remote-chat"]) == []
    # A refused connection answers at once; the bound only catches retries with back-off,
    # and is loose enough for a busy machine.
    assert time.monotonic() - started < 10


def test_default_registry_tops_up_with_demo_models_below_two(tiny_model_path, hub_cache):
    cache_model(hub_cache, "arena-test/tiny-a", tiny_model_path)
    one = default_registry(Settings(default_hub_models=["arena-test/tiny-a"]), ollama_url=None)
    assert [m.name for m in one.models][:1] == ["tiny-a"]
    assert {m.provider for m in one.models} == {"local", "demo"}
    cache_model(hub_cache, "arena-test/tiny-b", tiny_model_path)
    two = default_registry(
        Settings(default_hub_models=["arena-test/tiny-a", "arena-test/tiny-b"]), ollama_url=None
    )
    assert [m.name for m in two.models] == ["tiny-a", "tiny-b"]
    none = default_registry(Settings(default_hub_models=[]), ollama_url=None)
    assert {m.provider for m in none.models} == {"demo"}
    assert public_name("Qwen/Qwen2.5-0.5B-Instruct") == "qwen2.5-0.5b-instruct"


@pytest.mark.timeout(900)  # the start-up wait below may take up to 360 s on a busy machine
def test_arena_serve_with_no_registry_battles_between_cached_hub_models(
    tiny_model_path, hub_cache, tmp_path
):
    for repo_id in ("arena-test/tiny-a", "arena-test/tiny-b"):
        cache_model(hub_cache, repo_id, tiny_model_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(hub_cache),
        "HF_HUB_OFFLINE": "1",
        "ARENA_DEFAULT_HUB_MODELS": "arena-test/tiny-a,arena-test/tiny-b",
        "ARENA_DATA_DIR": str(tmp_path / "data"),
        "ARENA_HEALTH_INTERVAL_S": "0.5",
    }
    env.pop("ARENA_CONFIG_PATH", None)  # tmp_path has no arena.yaml: the default registry
    # A file, not a pipe: nobody reads a pipe while the test waits, and a full one would
    # block the server's logging (and so the server).
    log = tmp_path / "serve.log"
    with log.open("wb") as log_file:
        server = start_process(
            [*ARENA, "serve", "--port", str(port), "--log-level", "debug"], env=env,
            cwd=tmp_path, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        client = None
        models: set[str] = set()

        def both_models_offered() -> bool:
            nonlocal client, models
            if server.poll() is not None:
                raise AssertionError(f"arena serve exited:\n{log.read_text()[-3000:]}")
            try:
                if client is None:
                    client = ArenaClient(url)
                    client.start()
                models = {m["name"] for m in client.get("/api/models").json()["models"]}
            except httpx.HTTPError:
                client = None
                return False
            return models == {"tiny-a", "tiny-b"}  # both loaded (probed healthy)

        # Starting imports torch and loads two models: slow on a busy machine (over 120 s
        # was seen with the two cores loaded 9 deep), so this wait is longer than most.
        try:
            wait_until(
                both_models_offered,
                timeout_s=3 * PROCESS_DEADLINE_S,
                what="both hub models to be offered",
            )
        except AssertionError as e:
            # The server's own log lines (health probe failures among them), not the noise.
            lines = [x for x in log.read_text().splitlines() if " arena." in x]
            raise AssertionError(f"{e} (offered: {models})\n" + "\n".join(lines[-40:])) from None
        assert client is not None
        battle_id = client.new_battle()
        response, events = client.send(battle_id, "Tell me about the garden")
        assert response.status_code == 200
        assert {e.data["side"] for e in events if e.event == "done"} == {"a", "b"}
        revealed = client.vote(battle_id, "a").json()["models"]
        assert {revealed["a"]["name"], revealed["b"]["name"]} == {"tiny-a", "tiny-b"}
        assert not revealed["a"]["demo"]
        client.close()
    finally:
        server.terminate()
        try:
            server.wait(PROCESS_DEADLINE_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            message = f"arena serve did not stop on SIGTERM:\n{log.read_text()[-3000:]}"
            raise AssertionError(message) from None
    output = log.read_text()
    assert "Traceback" not in output, output
