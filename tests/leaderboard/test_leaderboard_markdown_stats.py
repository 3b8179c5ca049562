"""markdown_counts / approx_token_count on hand-made text and on real model answers.

Real answers: Arena-Hard v0.1 model answers (arena-hard-auto, data/arena-hard-v0.1/model_answer,
Apache-2.0), copied unchanged under /work/shared/data/arena_hard_v0.1/model_answer.
"""

from __future__ import annotations

import json
import re

import pytest

from arena.pipeline.markdown_stats import (
    approx_token_count,
    empty_counts,
    has_code,
    markdown_counts,
)
from support.shared_data import SHARED_DATA

ANSWERS = SHARED_DATA / "arena_hard_v0.1/model_answer"


def _answer(model: str, uid: str) -> str:
    with (ANSWERS / f"{model}.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["uid"] == uid:
                return row["messages"][1]["content"]["answer"]
    raise AssertionError(f"{uid} not in {model}")


def test_counts_shape_matches_public_conv_metadata():
    counts = markdown_counts("")
    assert counts == empty_counts()
    assert set(counts) == {"header_count", "list_count", "bold_count"}
    assert set(counts["header_count"]) == {"h1", "h2", "h3", "h4", "h5", "h6"}
    assert set(counts["list_count"]) == {"ordered", "unordered"}
    assert set(counts["bold_count"]) == {"**", "__"}


def test_counts_headers_lists_and_bold():
    text = (
        "# Title\n\n## Part\n\nSetext\n------\n\n"
        "Some **bold** and __bold too__ and *not bold*.\n\n"
        "1. one\n2. two\n   - nested\n   - nested again\n\n"
        "* star\n+ plus\n"
    )
    counts = markdown_counts(text)
    assert counts["header_count"] == {"h1": 1, "h2": 2, "h3": 0, "h4": 0, "h5": 0, "h6": 0}
    assert counts["list_count"] == {"ordered": 2, "unordered": 4}
    assert counts["bold_count"] == {"**": 1, "__": 1}


def test_code_is_not_markdown():
    text = "```python\n# a comment, not a header\nx = 2 ** 3  # **not bold**\n- not a list\n```\n"
    counts = markdown_counts(text)
    assert counts == empty_counts()
    assert has_code(text)
    assert has_code("    indented code block\n")
    assert not has_code("Just `inline` code and prose.")


def test_real_answer_ordered_steps_with_bold_titles():
    # gpt-4-0613 on "implement a SCIM server in PHP using slim": six numbered steps whose
    # titles are bold, and PHP code blocks in between.
    text = _answer("gpt-4-0613", "0122ab60646b4961bc39e9c03bdf6bcc")
    counts = markdown_counts(text)
    steps = re.findall(r"^\d+\. \*\*", text, flags=re.MULTILINE)
    assert len(steps) == 6
    assert counts["list_count"] == {"ordered": 6, "unordered": 0}
    assert counts["bold_count"]["**"] == 6
    assert sum(counts["header_count"].values()) == 0


def test_real_answer_headers():
    # gpt-3.5-turbo-0125 answer with ten "### " section headers.
    text = _answer("gpt-3.5-turbo-0125", "7956046cc15646909bd07c31d0ea0371")
    counts = markdown_counts(text)
    assert counts["header_count"]["h3"] == len(re.findall(r"^### ", text, flags=re.MULTILINE))
    assert counts["header_count"]["h3"] == 10


def test_real_answer_code_comments_are_not_headers():
    # gpt-4-0613 answer whose only "# " lines are comments inside fenced code.
    text = _answer("gpt-4-0613", "01f0684ccac74fdea8f21080cb61d591")
    line_starts = re.findall(r"^#{1,6}\s", text, flags=re.MULTILINE)
    outside = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    assert len(line_starts) == 8
    assert re.findall(r"^#{1,6}\s", outside, flags=re.MULTILINE) == []
    assert sum(markdown_counts(text)["header_count"].values()) == 0
    assert has_code(text)


def test_approx_token_count_rules():
    assert approx_token_count("") == 0
    assert approx_token_count("hello") == 1
    assert approx_token_count("hello world") == 2
    assert approx_token_count("internationalization") == 3  # 20 letters / 8
    assert approx_token_count("1234567") == 3  # digits in threes
    assert approx_token_count("a, b") == 3
    assert approx_token_count("你好") == 2
    assert approx_token_count("line\n\n\nnext") == 3
    text = "The quick brown fox jumps over the lazy dog. " * 10
    assert approx_token_count(text) == approx_token_count(text)  # deterministic


@pytest.mark.parametrize("model", ["gpt-4-0314", "gpt-4-0613", "gpt-3.5-turbo-0125"])
def test_token_estimate_on_real_answers_is_in_a_sane_range(model):
    # BPE tokenizers give roughly 1.3 tokens per English word on prose and more on code;
    # the estimate must stay within a generous band of that over 500 real answers.
    words = tokens = 0
    with (ANSWERS / f"{model}.jsonl").open(encoding="utf-8") as f:
        for line in f:
            answer = json.loads(line)["messages"][1]["content"]["answer"]
            words += len(answer.split())
            tokens += approx_token_count(answer)
    assert 1.0 < tokens / words < 2.5
