"""Demo models as judges: given a judge prompt (Arena's own, MT-Bench's from FastChat,
Apache-2.0, /work/shared/data/mt_bench, or an Arena-Hard-shaped one), a demo model answers
with a short judgement whose verdict the real parser reads; deterministic per prompt,
varied across prompts; ordinary chats are answered as before."""

from __future__ import annotations

import pytest

from arena.judge.benchmark_files import JudgePrompt, load_judge_prompts
from arena.judge.calls import JudgeCaller, judge_verdict
from arena.judge.prompts import (
    is_multi_turn,
    load_prompt_file,
    needs_reference,
    pair_fields,
    prompt_scale,
    render,
    single_fields,
)
from arena.judge.verdicts import Scale, parse_verdict
from arena.protocol import ChatCompletionRequest
from arena.providers.demo import VOCABULARY, DemoProvider
from arena.providers.demo_judge import verdict_format
from support.shared_data import SHARED_DATA

MT_PROMPTS = SHARED_DATA / "mt_bench/judge_prompts.jsonl"


def all_prompts() -> list[JudgePrompt]:
    return [*load_prompt_file(None)[0], *load_judge_prompts(MT_PROMPTS)]


def messages_for(prompt: JudgePrompt, variant: int) -> list[dict[str, str]]:
    """The prompt filled in for a made-up two-turn question; ``variant`` changes the answers."""
    turns = ("Name a river in Europe.", "And one in Asia?")
    reference = ("The Danube.", "The Mekong.") if needs_reference(prompt) else None
    n = 2 if is_multi_turn(prompt) else 1
    a = tuple(f"Answer {variant}-{k}: the Rhine, probably." for k in range(n))
    b = tuple(f"Answer {variant}-{k}: a river." for k in range(n))
    if prompt.type == "single":
        return render(prompt, single_fields(turns[:n], a, reference))
    return render(prompt, pair_fields(turns[:n], a, b, reference))


async def ask(provider: DemoProvider, messages: list[dict], **params) -> tuple[str, list]:
    request = ChatCompletionRequest(model=provider.name, messages=messages, **params)
    deltas = [d async for d in provider.stream_chat(request)]
    return "".join(d.text for d in deltas), deltas


@pytest.mark.parametrize("prompt", all_prompts(), ids=lambda p: p.name)
async def test_demo_verdicts_parse_are_deterministic_and_vary(prompt):
    judge = DemoProvider("demo-delta", tokens_per_s=0)
    scale = prompt_scale(prompt)
    verdicts = []
    for variant in range(12):
        messages = messages_for(prompt, variant)
        text, _ = await ask(judge, messages, temperature=0)
        value = parse_verdict(scale, text)
        assert value is not None, text
        assert text.rstrip().endswith("]]")  # the verdict comes last
        assert (await ask(judge, messages, temperature=0))[0] == text
        verdicts.append(value)
    assert len(set(verdicts)) > 1
    if scale is Scale.RATING:
        assert all(1 <= v <= 10 for v in verdicts)


async def test_the_verdict_format_is_read_off_the_prompt(graded_prompt):
    graded = JudgePrompt(**graded_prompt)
    assert verdict_format("\n".join(m["content"] for m in messages_for(graded, 0))) == (
        "graded_pair"
    )
    by_scale = {Scale.RATING: "rating", Scale.PAIR: "pair", Scale.GRADED_PAIR: "graded_pair"}
    for prompt in all_prompts():
        text = "\n".join(m["content"] for m in messages_for(prompt, 0))
        assert verdict_format(text) == by_scale[prompt_scale(prompt)], prompt.name
    assert verdict_format("Tell me about the river and the old bridge") is None
    assert verdict_format("Is [[A]] a wiki link?") is None  # one option is not a choice


async def test_ordinary_chats_are_still_word_salad():
    p = DemoProvider("demo-a", tokens_per_s=0)
    text, deltas = await ask(p, [{"role": "user", "content": "Tell me about the old bridge"}])
    words = {w.strip("*.-#0123456789 ").lower() for w in text.split()} - {""}
    assert words <= set(VOCABULARY) and "[[" not in text
    assert deltas[-1].usage.completion_tokens >= 40  # its natural length, not a verdict's


async def test_judgements_stream_in_pieces_and_honour_max_tokens():
    p = DemoProvider("demo-a", tokens_per_s=0)
    prompt = next(q for q in load_prompt_file(None)[0] if q.name == "arena-single")
    messages = messages_for(prompt, 0)
    _, deltas = await ask(p, messages)
    pieces = [d for d in deltas if d.text]
    assert len(pieces) > 5 and deltas[-1].usage.completion_tokens == len(pieces)
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    _, cut = await ask(p, messages, max_tokens=3)
    assert [d.finish_reason for d in cut if d.finish_reason] == ["length"]
    assert cut[-1].usage.completion_tokens == 3


async def test_a_demo_judge_through_the_judge_caller():
    prompt = next(q for q in load_prompt_file(None)[0] if q.name == "arena-graded-pair")
    caller = JudgeCaller("demo-delta", DemoProvider("demo-delta", tokens_per_s=0))
    verdict = await judge_verdict(caller, messages_for(prompt, 3), Scale.GRADED_PAIR)
    assert verdict.status == "ok" and verdict.samples == 1
    assert verdict.value in ("A>>B", "A>B", "A=B", "B>A", "B>>A")
