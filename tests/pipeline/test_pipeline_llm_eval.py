"""The LLM taggers scored against real labelled prompts, and their values read by the
leaderboard.

Ground truth (../shared/data, see SOURCES.md): MT-Bench's 80 questions with their
categories (math; writing and roleplay = creative writing) and Arena-Hard v0.1's 500
prompts, all selected as hard. No real language model runs on this machine's CPUs within a
test's budget (no model hub is reachable and no weights ship with any installed package),
so two labellers stand in, and neither figure says anything about the prompts:

- an oracle that answers from the ground truth through the real prompt → verdict → metric
  path, which must then score perfectly (this checks the machinery end to end);
- the built-in demo model through the real registry and provider, whose labels are random:
  every prompt must get a readable verdict; the figures are only printed.
"""

from __future__ import annotations

import json
import re

import pytest

from arena.leaderboard.battle_columns import CRITERIA
from arena.leaderboard.battle_table import normalize_rows
from arena.pipeline.labeller import open_labeller
from arena.pipeline.llm_taggers import LLM_TAGGERS, prompt_text
from arena.pipeline.tag_eval import (
    arena_hard_items,
    evaluate,
    labeller_predictions,
    mt_bench_items,
)
from support.shared_data import SHARED_DATA

MT_BENCH = SHARED_DATA / "mt_bench" / "question.jsonl"
ARENA_HARD = SHARED_DATA / "arena_hard_v0.1" / "question.jsonl"
QUOTED = re.compile(r"<prompt>\n(.*)\n</prompt>", re.DOTALL)

pytestmark = pytest.mark.skipif(
    not (MT_BENCH.is_file() and ARENA_HARD.is_file()), reason="shared data not found"
)


def oracle(items):
    """An ``ask`` answering each labeller prompt from the item's ground-truth labels."""
    truth = {prompt_text(item.record): item.labels for item in items}

    async def ask(prompt: str) -> str:
        labels = truth[QUOTED.search(prompt).group(1)]
        if '"score": 0-5' in prompt:
            return "Score: 1"
        if '"math": true|false' in prompt:
            return "Yes." if labels.get("math") else "No."
        if '"creative_writing"' in prompt:
            return json.dumps({"creative_writing": labels.get("creative_writing", False)})
        hard = labels.get("hard", False)
        return "```json\n" + json.dumps({c: hard for c in CRITERIA}) + "\n```"

    return ask


async def test_an_oracle_labeller_scores_perfectly_through_the_taggers():
    for items in (mt_bench_items(MT_BENCH), arena_hard_items(ARENA_HARD)):
        predictions = await labeller_predictions(items, LLM_TAGGERS, oracle(items))
        metrics = evaluate(items, predictions)
        assert metrics, "no label scored"
        for m in metrics.values():
            assert m.missing == 0 and m.accuracy == 1.0, m
            assert m.recall in (1.0, None)
    assert set(metrics) == {"hard"} and metrics["hard"].support == 500


async def test_the_demo_labeller_gives_a_readable_verdict_for_every_real_prompt(tmp_path):
    registry = tmp_path / "arena.yaml"
    registry.write_text(
        "models:\n  - name: demo-labeller\n    provider: demo\n    params: {tokens_per_s: 0}\n",
        encoding="utf-8",
    )
    labeller = open_labeller("demo-labeller", config=registry, cache_path=tmp_path / "c.sqlite")
    try:
        figures = {}
        for name, items in (
            ("mt-bench", mt_bench_items(MT_BENCH)),
            ("arena-hard", arena_hard_items(ARENA_HARD)),
        ):
            predictions = await labeller_predictions(items, LLM_TAGGERS, labeller.ask)
            for label, m in evaluate(items, predictions).items():
                assert m.missing == 0, f"{name} {label}: {m.missing} unreadable verdicts"
                figures[f"{name}/{label}"] = (m.precision, m.recall, m.accuracy, m.support)
    finally:
        await labeller.aclose()
    assert labeller.stats.calls == 4 * (80 + 500) and labeller.stats.failed == 0
    assert figures["mt-bench/math"][3] == 10
    assert figures["mt-bench/creative_writing"][3] == 20
    assert figures["arena-hard/hard"][3] == 500
    print("demo labeller (random labels, meaningless):", figures)


def test_tag_values_are_what_the_leaderboard_reads():
    hard = {**dict.fromkeys(CRITERIA, True), "creativity": False, "hard": True}
    soft = {**dict.fromkeys(CRITERIA, False), "specificity": True, "hard": False}
    rows = [
        {
            "model_a": "a",
            "model_b": "b",
            "winner": "model_a",
            "category_tag": {
                "criteria_v0.1": hard,
                "if_v0.1": {"if": True, "score": 4},
                "math_v0.1": {"math": True},
                "creative_writing_v0.1": {"creative_writing": False},
            },
        },
        {
            "model_a": "a",
            "model_b": "b",
            "winner": "model_b",
            "category_tag": {
                "criteria_v0.1": soft,
                "if_v0.1": {"if": False, "score": 3},
                "math_v0.1": {"math": False},
                "creative_writing_v0.1": {"creative_writing": True},
            },
        },
    ]
    frame = normalize_rows(rows)
    assert frame["is_hard"].to_list() == [True, False]
    assert frame["is_instruction_following"].to_list() == [True, False]
    assert frame["is_math"].to_list() == [True, False]
    assert frame["is_creative_writing"].to_list() == [False, True]
