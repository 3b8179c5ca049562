"""The built-in demo models: deterministic, streaming, honouring the request's limits."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from arena.errors import BadRequest, NotSupported
from arena.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from arena.providers.demo import VOCABULARY, DemoLanguageModel, DemoProvider


def chat(content="Tell me about the river and the old bridge", **kwargs):
    return ChatCompletionRequest(
        model="demo", messages=[{"role": "user", "content": content}], **kwargs
    )


async def answer(provider, request):
    deltas = [d async for d in provider.stream_chat(request)]
    return "".join(d.text for d in deltas), deltas


async def test_same_prompt_and_seed_give_the_same_answer_and_seeds_differ():
    p = DemoProvider("demo-a", tokens_per_s=0)
    first, deltas = await answer(p, chat(seed=1))
    again, _ = await answer(p, chat(seed=1))
    other_seed, _ = await answer(p, chat(seed=2))
    other_model, _ = await answer(DemoProvider("demo-b", tokens_per_s=0), chat(seed=1))
    assert first == again
    assert first != other_seed and first != other_model
    words = {w.strip("*.-#0123456789 ").lower() for w in first.split()} - {""}
    assert words <= set(VOCABULARY)
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    usage = deltas[-1].usage
    assert usage.prompt_tokens == 12 and usage.completion_tokens == sum(1 for d in deltas if d.text)


async def test_answers_sometimes_use_markdown_lists_and_bold():
    p = DemoProvider("demo-lists", style="lists", tokens_per_s=0)
    texts = [(await answer(p, chat(f"question number {i}", seed=i)))[0] for i in range(12)]
    assert any("\n- " in t or t.startswith("- ") for t in texts)
    assert any("\n1. " in t for t in texts)
    assert any("**" in t for t in texts)
    plain = DemoProvider("demo-plain", style="plain", tokens_per_s=0)
    plain_texts = [
        (await answer(plain, chat(f"question number {i}", seed=i)))[0] for i in range(12)
    ]
    assert sum("**" in t for t in plain_texts) < sum("**" in t for t in texts)


async def test_max_tokens_stop_and_n():
    p = DemoProvider("demo-a", tokens_per_s=0)
    full, _ = await answer(p, chat(seed=5))
    _, limited = await answer(p, chat(seed=5, max_tokens=4))
    assert [d.finish_reason for d in limited if d.finish_reason] == ["length"]
    assert limited[-1].usage.completion_tokens == 4
    stop = full.split()[3]
    stopped, deltas = await answer(p, chat(seed=5, stop=[stop]))
    assert stopped == full[: full.index(stop)]
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    _, many = await answer(p, chat(seed=5, n=3))
    texts = ["".join(d.text for d in many if d.index == i) for i in range(3)]
    assert texts[0] == full and len(set(texts)) == 3


async def test_greedy_decoding_is_deterministic_without_a_seed():
    model = DemoLanguageModel.from_name("demo-x")
    pieces = model.pieces("hello", seed=0, temperature=0.0, style="plain")
    first = [next(pieces) for _ in range(20)]
    again_iter = model.pieces("hello", seed=0, temperature=0.0, style="plain")
    assert first == [next(again_iter) for _ in range(20)]


async def test_streams_at_the_configured_rate_and_can_be_cancelled():
    p = DemoProvider("demo-a", tokens_per_s=50)
    stream = p.stream_chat(chat())
    loop = asyncio.get_running_loop()
    start = loop.time()
    got = [await anext(stream) for _ in range(5)]
    assert loop.time() - start >= 4 / 50  # paced, not dumped at once
    await stream.aclose()
    assert all(d.text for d in got)


async def test_images_tools_and_completions_and_embeddings():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    request = ChatCompletionRequest(
        model="d", messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, image]}]
    )
    with pytest.raises(BadRequest, match="does not accept images"):
        await answer(DemoProvider("demo-a", tokens_per_s=0), request)
    vision = DemoProvider("demo-v", tokens_per_s=0, capabilities=frozenset({"text", "vision"}))
    text, _ = await answer(vision, request)
    assert text.startswith("I see 1 image. ")
    with pytest.raises(NotSupported):
        await answer(vision, chat(tools=[{"type": "function", "function": {"name": "f"}}]))
    completion = [
        d
        async for d in vision.stream_completion(
            CompletionRequest(model="d", prompt="Once", max_tokens=5, echo=True)
        )
    ]
    assert completion[0].text == "Once" and completion[-1].usage.completion_tokens == 5
    result = await vision.embed(
        EmbeddingRequest(model="d", input=["red river", "red river", "blue sky"])
    )
    a, b, c = (np.array(v) for v in result.vectors)
    assert np.allclose(a, b) and abs(np.linalg.norm(a) - 1) < 1e-9 and not np.allclose(a, c)


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="style"):
        DemoProvider("demo-a", style="fancy")
