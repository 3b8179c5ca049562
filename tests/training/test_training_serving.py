"""A trained output directory joins the arena with one command: `arena worker --model DIR`
(a real subprocess) registers with a real gateway and answers a chat through it, for a model
with LoRA merged in and for an adapter saved alone (loaded on its base)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import openai
import pytest
from typer.testing import CliRunner

from arena.cli import app
from arena.config import Settings
from support.processes import PROCESS_DEADLINE_S, start_process, wait_until
from support.servers import serve_app
from training.training_data import sft_conversations, write_jsonl

pytestmark = pytest.mark.local
ARENA = [sys.executable, "-c", "from arena.cli import app; app()"]


@pytest.mark.parametrize("saved", ["merged", "adapter"])
def test_trained_model_answers_through_the_gateway(saved, tiny_model, tmp_path):
    from arena.server import create_server_app

    data = write_jsonl(tmp_path / "sft.jsonl", [{"messages": c} for c in sft_conversations(4)])
    out = tmp_path / "trained"
    extra = ["--adapter-only"] if saved == "adapter" else []
    result = CliRunner().invoke(app, ["train", "sft", "--model", str(tiny_model),
                                      "--data", str(data), "--output", str(out), "--lora",
                                      "--max-steps", "2", "--cpu", *extra])  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert (out / "adapter_config.json").exists() == (saved == "adapter")

    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'gw.db'}",
        heartbeat_interval_s=0.3,
        heartbeat_expiry_s=60.0,
    )
    env = {**os.environ, "ARENA_HEARTBEAT_INTERVAL_S": "0.3", "TOKENIZERS_PARALLELISM": "false"}
    with (
        serve_app(create_server_app(settings, providers={})) as url,
        open(tmp_path / "worker.log", "w") as log,
    ):
        worker = start_process(
            [*ARENA, "worker", "--model", str(out), "--name", "trained", "--gateway", url,
             "--device", "cpu"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:

            def registered() -> bool:
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                try:
                    workers = httpx.get(url + "/internal/workers", timeout=30).json()["data"]
                except httpx.HTTPError:
                    return False
                return bool(workers)

            wait_until(registered, what="the trained model's worker to register")
            sdk = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
            reply = sdk.chat.completions.create(
                model="trained",
                messages=[{"role": "user", "content": "Tell me about item 1"}],
                max_tokens=8,
                seed=1,
            )
            assert reply.model == "trained"
            assert reply.usage.completion_tokens > 0
            assert reply.choices[0].finish_reason in ("stop", "length")
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=PROCESS_DEADLINE_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
