"""Verdict parsing, on hand-made edge cases and on 320 real GPT-4 MT-Bench judgments.

Real data: /work/shared/data/routellm_evals/mt_bench/judgements.jsonl, from RouteLLM
(lm-sys/RouteLLM, routellm/evals/mt_bench, Apache-2.0): GPT-4 single-grade judgments of
gpt-4-1106-preview and Mixtral-8x7B-Instruct on MT-Bench, each with the score the original
pipeline recorded beside the judgment text.
"""

from __future__ import annotations

import json

import pytest

from arena.judge.scores import mt_bench_scores
from arena.judge.verdicts import Scale, parse_graded_pair, parse_pair, parse_rating, parse_verdict
from support.shared_data import SHARED_DATA

DATA = SHARED_DATA / "routellm_evals/mt_bench/judgements.jsonl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is fine. Rating: [[8]]", 8.0),
        ("Rating: [[8.5]]", 8.5),
        ("**Rating: [[ 7 ]]**", 7.0),
        ("Rating: `[[6]]`", 6.0),
        (r"Rating: \[\[9\]\]", 9.0),
        ("Use the format [[rating]], e.g. [[5]]. ... Final: [[3]]", 3.0),
        ("Rating: [[10/10]]", 10.0),
        ("[[2]] at first, but on reflection [[4]]", 4.0),
        ("Rating: [7]", 7.0),  # single brackets right after "rating"
        ("Score: [[11]]", None),  # out of the 1-10 scale
        ("Rating: [[0]]", None),
        ("I would give it an eight.", None),
        ("The list [3] and [[x]]", None),
        ("", None),
    ],
)
def test_parse_rating(text: str, expected: float | None) -> None:
    assert parse_rating(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Assistant A is better. [[A]]", "A"),
        ("[[B]]", "B"),
        ("It's a tie: [[C]]", "tie"),
        ("Output [[A]] if A is better... My verdict: **[[ B ]]**", "B"),
        ("[[tie]]", "tie"),
        ("[[A>B]]", None),
        ("A is better", None),
    ],
)
def test_parse_pair(text: str, expected: str | None) -> None:
    assert parse_pair(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My final verdict is: [[A>>B]]", "A>>B"),
        ("[[A>B]]", "A>B"),
        ("[[A=B]]", "A=B"),
        ("[[B=A]]", "A=B"),
        ("[[B>A]]", "B>A"),
        ("[[B>>A]]", "B>>A"),
        ("[[A<B]]", "B>A"),
        ("[[A<<B]]", "B>>A"),
        ("[[ A > B ]]", "A>B"),
        ("**[[B>>A]]**", "B>>A"),
        ("Tie, relatively the same: [[A=B]]. Then again ... [[B>A]]", "B>A"),
        ("[[A>A]]", None),
        ("[[A]]", None),
        ("A is much better", None),
    ],
)
def test_parse_graded_pair(text: str, expected: str | None) -> None:
    assert parse_graded_pair(text) == expected


def test_parse_verdict_dispatches_on_scale() -> None:
    assert parse_verdict(Scale.RATING, "[[4]]") == 4.0
    assert parse_verdict(Scale.PAIR, "[[C]]") == "tie"
    assert parse_verdict(Scale.GRADED_PAIR, "[[A>>B]]") == "A>>B"


def _real_rows() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


def test_real_gpt4_judgments_parse_to_recorded_scores() -> None:
    rows = _real_rows()
    assert len(rows) == 320
    parsed = 0
    for row in rows:
        score = parse_rating(row["judgment"])
        if score is None:
            # Unparsable texts must correspond to the original pipeline's "no score" (-1).
            assert row["score"] == -1, row["judgment"][-200:]
            continue
        parsed += 1
        assert score == pytest.approx(float(row["score"])), row["judgment"][-200:]
    assert parsed == 320  # every real judgment carries a well-formed verdict


def test_real_judgments_aggregate_to_recorded_means() -> None:
    rows = _real_rows()
    reparsed = [
        {**row, "score": s if (s := parse_rating(row["judgment"])) is not None else -1}
        for row in rows
    ]
    ours = mt_bench_scores(reparsed).by_model()
    for model, expected in (
        ("gpt-4-1106-preview", 9.23),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 8.34),
    ):
        recorded = [r["score"] for r in rows if r["model"] == model and r["score"] >= 0]
        assert ours[model].overall == pytest.approx(sum(recorded) / len(recorded), abs=1e-12)
        assert ours[model].overall == pytest.approx(expected, abs=0.005)
        assert ours[model].n == 160
        assert set(ours[model].turn_scores) == {1, 2}


def test_show_on_real_judgments_with_categories_and_radar(tmp_path) -> None:
    """``arena judge show`` on the real judgment file, categories from MT-Bench's question
    file (FastChat, Apache-2.0), radar plot written."""
    from typer.testing import CliRunner

    from arena.cli import app

    out = tmp_path / "report.json"
    plot = tmp_path / "radar.png"
    result = CliRunner().invoke(
        app,
        [
            "judge",
            "show",
            "-i",
            str(DATA),
            "-q",
            str(SHARED_DATA / "mt_bench/question.jsonl"),
            "--plot",
            str(plot),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    models = {m["model"]: m for m in report["mt_bench"]["models"]}
    gpt4 = models["gpt-4-1106-preview"]
    assert gpt4["overall"] == pytest.approx(9.228125)
    rows = _real_rows()
    categories = {
        json.loads(x)["question_id"]: json.loads(x)["category"]
        for x in (SHARED_DATA / "mt_bench/question.jsonl").read_text().splitlines()
    }
    for category, mean in gpt4["categories"].items():
        mine = [r["score"] for r in rows if r["model"] == "gpt-4-1106-preview"
                and categories[r["question_id"]] == category]  # fmt: skip
        assert mean == pytest.approx(sum(mine) / len(mine))
    assert len(gpt4["categories"]) >= 3
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert report["costs"][0]["judge"] == "gpt-4"
