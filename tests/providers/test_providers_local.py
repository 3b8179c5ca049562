"""The local transformers adapter on a tiny model built by the test session."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest

from arena.errors import BadRequest, ContextLengthExceeded, UpstreamError
from arena.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest

pytestmark = pytest.mark.local


@pytest.fixture
async def local(tiny_model_path):
    from arena.providers.local import LocalProvider

    provider = LocalProvider(str(tiny_model_path), name="tiny", device="auto", max_concurrency=2)
    yield provider
    await provider.aclose()


def chat(content="Hello there", **kwargs):
    return ChatCompletionRequest(
        model="tiny", messages=[{"role": "user", "content": content}], **kwargs
    )


async def run(provider, request):
    deltas = [d async for d in provider.stream_chat(request)]
    return "".join(d.text for d in deltas), deltas


async def test_streams_tokens_with_usage_and_length_finish(local, tiny_model_path):
    from transformers import AutoTokenizer

    text, deltas = await run(local, chat(max_tokens=12, seed=1))
    assert text and sum(1 for d in deltas if d.text) > 1
    assert [d.finish_reason for d in deltas if d.finish_reason] in (["length"], ["stop"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello there"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.endswith("<|assistant|>\n")
    usage = deltas[-1].usage
    assert usage.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert 1 <= usage.completion_tokens <= 12
    assert local.context_length == 256


async def test_seed_reproduces_and_stop_strings_cut_the_text(local):
    full, _ = await run(local, chat(max_tokens=40, seed=7, temperature=0.9))
    again, _ = await run(local, chat(max_tokens=40, seed=7, temperature=0.9))
    assert full == again
    stop = full[10:13]
    cut, deltas = await run(local, chat(max_tokens=40, seed=7, temperature=0.9, stop=[stop]))
    assert cut == full[: full.index(stop)]
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    greedy_a, _ = await run(local, chat(max_tokens=10, temperature=0))
    greedy_b, _ = await run(local, chat(max_tokens=10, temperature=0, seed=99))
    assert greedy_a == greedy_b


async def test_n_choices(local):
    _, deltas = await run(local, chat(max_tokens=8, seed=3, n=2, ignore_eos=True))
    assert {d.index for d in deltas if d.finish_reason} == {0, 1}
    assert deltas[-1].usage.completion_tokens == 16


async def test_context_length_is_a_clear_400(local):
    long_prompt = " ".join(["the old sailor reads a red book"] * 60)
    with pytest.raises(ContextLengthExceeded, match="maximum context length is 256") as caught:
        await run(local, chat(long_prompt))
    assert caught.value.status_code == 400 and caught.value.param == "messages"
    with pytest.raises(ContextLengthExceeded, match="max_tokens asks for 1000") as caught:
        await run(local, chat(max_tokens=1000))
    assert caught.value.param == "max_tokens"
    with pytest.raises(BadRequest, match="images"):
        image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        await run(
            local, ChatCompletionRequest(model="t", messages=[{"role": "user", "content": [image]}])
        )


async def test_concurrency_limit_queues_requests(tiny_model_path):
    from arena.providers.local import LocalProvider

    provider = LocalProvider(str(tiny_model_path), max_concurrency=1)
    events: list[tuple[str, str]] = []

    async def consume(tag):
        request = chat(max_tokens=150, seed=1, temperature=0, ignore_eos=True)
        async for d in provider.stream_chat(request):
            events.append((tag, "finish" if d.finish_reason else "usage" if d.usage else "text"))

    first = asyncio.create_task(consume("a"))
    while not events:
        await asyncio.sleep(0.005)
    second = asyncio.create_task(consume("b"))
    while provider.waiting == 0 and not first.done():
        await asyncio.sleep(0.001)
    assert provider.waiting == 1 and provider.running == 1
    await asyncio.gather(first, second)
    order = [tag for tag, _ in events]
    assert order == sorted(order)  # b started only after a was done
    assert provider.queue_length == 0


async def test_consumer_going_away_stops_generation(local):
    stream = local.stream_chat(chat(max_tokens=200, seed=1, ignore_eos=True))
    for _ in range(3):
        await anext(stream)
    await stream.aclose()
    steps = local.steps
    await asyncio.sleep(0.2)
    assert local.steps == steps and local.running == 0

    async def consume():
        async for _ in local.stream_chat(chat(max_tokens=200, seed=1, ignore_eos=True)):
            pass

    task = asyncio.create_task(consume())
    while local.running == 0:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)
    steps = local.steps
    await asyncio.sleep(0.2)
    assert local.steps == steps and local.running == 0 and local.steps < 200 + 5


async def test_completions_and_embeddings(local):
    deltas = [
        d
        async for d in local.stream_completion(
            CompletionRequest(model="t", prompt="The cat", max_tokens=5, echo=True, seed=2)
        )
    ]
    assert deltas[0].text == "The cat"
    assert deltas[-1].usage.completion_tokens <= 5
    result = await local.embed(
        EmbeddingRequest(model="t", input=["the red book", "the red book", "a warm loaf"])
    )
    a, b, c = (np.array(v) for v in result.vectors)
    assert a.shape == (48,) and np.allclose(a, b) and not np.allclose(a, c)
    assert abs(np.linalg.norm(a) - 1) < 1e-5
    assert result.prompt_tokens > 0
    short = await local.embed(EmbeddingRequest(model="t", input="the red book", dimensions=8))
    assert len(short.vectors[0]) == 8


async def test_missing_model_directory_is_an_upstream_error(tmp_path):
    from arena.providers.local import LocalProvider

    provider = LocalProvider(str(tmp_path / "nothing-here"), device="cpu")
    with pytest.raises(UpstreamError, match="cannot load local model"):
        await run(provider, chat())
    assert await provider.health() is False


def test_package_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import arena.providers.registry as r, arena.providers.local, arena.providers.demo\n"
        "import arena.providers.openai_compat, arena.providers.anthropic, arena.providers.gemini\n"
        "ps = r.build_providers(r.default_registry(ollama_url=None))\n"
        "assert len(ps) == 4, ps\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("prompt", ["", []])
async def test_an_empty_completion_prompt_is_a_bad_request(local, prompt):
    request = CompletionRequest(model="t", prompt=prompt, max_tokens=3)
    with pytest.raises(BadRequest, match="prompt must not be empty"):
        async for _ in local.stream_completion(request):
            pass
    assert local.running == 0


async def test_a_failing_forward_pass_is_an_upstream_error(local, monkeypatch):
    loaded = await local.load()

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loaded.model, "forward", broken)
    with pytest.raises(UpstreamError, match="out of memory"):
        await run(local, chat(max_tokens=5))
    assert local.running == 0 and not local._semaphore.locked()


async def test_a_corrupt_weights_file_is_an_upstream_error(tiny_model_path, tmp_path):
    import shutil

    from arena.providers.local import LocalProvider

    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_path, broken)
    for weights in broken.glob("*.safetensors"):
        weights.write_bytes(b"not a safetensors file")
    provider = LocalProvider(str(broken), device="cpu")
    assert await provider.health() is False
    with pytest.raises(UpstreamError, match="cannot load local model"):
        await run(provider, chat())
