"""The loop closes: a model trained with `arena train sft` is served by a real `arena worker`
subprocess, registers with a real `arena serve` subprocess, and plays an anonymous battle
there against a demo model; the vote is stored and the trained model's answer is the
worker's own text. Once on SQLite and once on PostgreSQL (the store is involved)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from arena.cli import app
from arena.store.db import Database
from arena.store.models import Battle, Conversation, Message, Vote
from support.processes import (
    PROCESS_DEADLINE_S,
    free_port,
    kill_tree,
    process_tree,
    start_process,
    still_running,
    wait_until,
)
from support.web_fakes import ArenaClient
from training.training_data import sft_conversations, write_jsonl

pytestmark = pytest.mark.local
ARENA = [sys.executable, "-c", "from arena.cli import app; app()"]
# Names no answer of either model is likely to contain, so no identity leak flags the vote.
TRAINED, RIVAL = "quokka-sft", "numbat-demo"
FAST = "0.3"  # seconds between health probes and heartbeats: the model joins quickly


@pytest.fixture(scope="module")
def trained_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny model after two LoRA SFT steps, merged: what `arena train sft` leaves."""
    tmp = tmp_path_factory.mktemp("battle-training")
    data = write_jsonl(tmp / "sft.jsonl", [{"messages": c} for c in sft_conversations(4)])
    out = tmp / "trained"
    result = CliRunner().invoke(app, ["train", "sft", "--model", str(tiny_model),
                                      "--data", str(data), "--output", str(out), "--lora",
                                      "--max-steps", "2", "--cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out


@contextlib.contextmanager
def running(command: list[str], *, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Run ``command``; on exit stop it (SIGTERM, then SIGKILL past the deadline) and check
    that it and every process it started are gone."""
    with log.open("ab") as out:
        proc = start_process(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        tree = process_tree(proc.pid)
        proc.terminate()
        try:
            proc.wait(timeout=PROCESS_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            wait_until(lambda: not still_running(tree), what=f"arena {command[3]} to end")
            survivors: set[tuple[int, int]] = set()
        except AssertionError:
            survivors = still_running(tree)
            kill_tree(survivors)
    assert not survivors, f"processes outlived arena {command[3]}: {survivors}"


def alive(proc: subprocess.Popen, log: Path) -> None:
    assert proc.poll() is None, f"exited ({proc.returncode}):\n{log.read_text()[-4000:]}"


def play_one_turn(client: ArenaClient, worker_log: Path) -> tuple[str, dict[str, str]]:
    """Start an anonymous battle, send one message, read the stream to its end; return the
    battle id and each side's streamed text."""
    battle_id = client.new_battle("battle")
    response, events = client.send(battle_id, "Tell me about item 1")
    assert response.status_code == 200, response.text
    errors = [e.data for e in events if e.event == "error"]
    assert not errors, (errors, worker_log.read_text()[-4000:])
    assert {e.data["side"] for e in events if e.event == "done"} == {"a", "b"}
    end = [e.data for e in events if e.event == "end"]
    assert len(end) == 1 and end[0]["can_vote"], end
    streamed = {
        side: "".join(
            e.data["text"] for e in events if e.event == "delta" and e.data["side"] == side
        )
        for side in ("a", "b")
    }
    return battle_id, streamed


def registry_yaml() -> str:
    return (
        "models:\n"
        f"  - {{name: {TRAINED}, provider: workers}}\n"
        f"  - {{name: {RIVAL}, provider: demo, params: {{tokens_per_s: 0}}}}\n"
    )


def test_trained_model_plays_a_battle_through_arena_serve(
    trained_model, own_database_url, tmp_path
):
    registry = tmp_path / "arena.yaml"
    registry.write_text(registry_yaml())
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_WORKER_SECRET")}
    base["TOKENIZERS_PARALLELISM"] = "false"
    serve_env = {
        **base,
        "ARENA_DATA_DIR": str(tmp_path / "data"),
        "ARENA_DATABASE_URL": own_database_url,
        "ARENA_CONFIG_PATH": str(registry),
        "ARENA_HEALTH_INTERVAL_S": FAST,
        "ARENA_HEARTBEAT_INTERVAL_S": FAST,
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    serve_cmd = [*ARENA, "serve", "--port", str(port), "--log-level", "warning"]
    worker_cmd = [*ARENA, "worker", "--model", str(trained_model), "--name", TRAINED,
                  "--gateway", url, "--device", "cpu", "--heartbeat-interval", FAST,
                  "--log-level", "warning"]  # fmt: skip

    with running(serve_cmd, env=serve_env, log=serve_log) as serve:

        def healthy() -> bool:
            alive(serve, serve_log)
            try:
                return httpx.get(url + "/health", timeout=10).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, what="arena serve to answer /health")
        client = ArenaClient(url)
        # A CPU answer on a busy machine may pause between chunks longer than the default.
        client.http.timeout = httpx.Timeout(PROCESS_DEADLINE_S)
        try:
            client.start()

            def named() -> set[str]:
                return {m["name"] for m in client.get("/api/models").json()["models"]}

            # No worker yet: the trained model is configured but gets no battles.
            assert TRAINED not in named()
            with running(worker_cmd, env=base, log=worker_log) as worker:

                def joined() -> bool:
                    alive(serve, serve_log)
                    alive(worker, worker_log)
                    return TRAINED in named()

                wait_until(joined, what="the trained model to join the arena")

                # A random-weight byte-level model ends its answer at once about one time
                # in 170 (sampled, unseeded): a fresh battle, up to three, keeps that chance
                # out of the test. Every battle played is checked in full.
                for _ in range(3):
                    battle_id, streamed = play_one_turn(client, worker_log)
                    if all(text.strip() for text in streamed.values()):
                        break

                voted = client.vote(battle_id, "a")
                assert voted.status_code == 200, voted.text
                result = voted.json()
        finally:
            client.close()

    sides = {side: info["name"] for side, info in result["models"].items()}
    assert sorted(sides.values()) == sorted([TRAINED, RIVAL])
    trained_side = next(side for side, name in sides.items() if name == TRAINED)
    assert streamed[trained_side].strip(), "the trained model's answer came back empty"
    assert result["vote"] == "a"
    assert result["leaked"] is False and result["counted"] is True
    assert result["models"][trained_side]["demo"] is False

    db = Database(own_database_url)
    try:
        with db.session(read_only=True) as s:
            battle = s.get(Battle, battle_id)
            assert battle is not None and battle.mode == "battle"
            assert {battle.model_a, battle.model_b} == {TRAINED, RIVAL}
            votes = s.scalars(select(Vote).where(Vote.battle_id == battle_id)).all()
            assert [v.type for v in votes] == ["a"]
            answer = s.scalars(
                select(Message)
                .join(Conversation)
                .where(
                    Conversation.battle_id == battle_id,
                    Conversation.model == TRAINED,
                    Message.role == "assistant",
                )
            ).one()
            assert answer.error is None
            # The store keeps NUL as U+FFFD on every backend (SafeText); a byte-level
            # tiny model may well emit one.
            assert answer.content == streamed[trained_side].replace("\x00", "\ufffd")
            assert answer.completion_tokens and answer.completion_tokens > 0
    finally:
        db.dispose()
