"""Base filters, categories and minimum votes on generated battles."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from arena.errors import BadRequest
from arena.leaderboard.battle_table import normalize_rows
from arena.leaderboard.filters import (
    BattleFilters,
    apply_base_filters,
    apply_min_votes,
    available_categories,
    canonical_category,
    parse_date,
    select_battles,
)

EVERYTHING = BattleFilters(anony_only=False, include_leaked=True)


@pytest.fixture
def rows(make_rows):
    return make_rows(300)


@pytest.fixture
def frame(rows):
    return normalize_rows(rows)


def test_anonymous_only_is_the_default(rows, frame):
    kept = apply_base_filters(frame, BattleFilters()).frame
    assert kept.height == sum(r["anony"] for r in rows)
    assert apply_base_filters(frame, EVERYTHING).frame.height == len(rows)


def test_dedup_sampled(rows, frame):
    kept = apply_base_filters(frame, BattleFilters(anony_only=False, dedup_sampled_only=True))
    assert kept.frame.height == sum(r["dedup_tag"]["sampled"] for r in rows)


def test_leaked_battles_are_excluded_unless_asked(rows):
    for i, row in enumerate(rows):
        row["leaked"] = i < 25
    frame = normalize_rows(rows)
    assert apply_base_filters(frame, BattleFilters(anony_only=False)).frame.height == 275
    assert apply_base_filters(frame, EVERYTHING).frame.height == 300


def test_date_window(rows, frame):
    since = datetime.fromtimestamp(rows[100]["tstamp"], tz=UTC)
    until = datetime.fromtimestamp(rows[200]["tstamp"], tz=UTC)
    kept = apply_base_filters(frame, BattleFilters(anony_only=False, since=since, until=until))
    assert kept.frame.height == 100
    assert kept.counts()["since"] == 200 and kept.counts()["until"] == 100


def test_parse_date():
    assert parse_date("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_date("2024-05-01T12:30:00+02:00").utcoffset().total_seconds() == 7200
    assert parse_date(None) is None
    with pytest.raises(BadRequest):
        parse_date("yesterday")


def test_exclude_models_and_ties(rows, frame):
    kept = apply_base_filters(
        frame, BattleFilters(anony_only=False, exclude_models=("delta-tiny",), exclude_ties=True)
    ).frame
    expected = [
        r
        for r in rows
        if "delta-tiny" not in (r["model_a"], r["model_b"]) and not r["winner"].startswith("tie")
    ]
    assert kept.height == len(expected)
    assert "delta-tiny" not in set(kept["model_a"]) | set(kept["model_b"])
    assert not kept["winner"].str.starts_with("tie").any()


def test_min_votes_drops_rare_models(make_rows):
    rows = make_rows(200)
    rows += [
        {"model_a": "rare", "model_b": "alpha-large", "winner": "model_b", "anony": True}
        for _ in range(3)
    ]
    frame = normalize_rows(rows)
    assert "rare" in set(apply_min_votes(frame, 3)["model_a"])
    kept = apply_min_votes(frame, 4)
    assert kept.height == 200
    assert "rare" not in set(kept["model_a"])


@pytest.mark.parametrize(
    ("category", "predicate"),
    [
        ("full", lambda r: True),
        ("hard_prompts", lambda r: sum(r["category_tag"]["criteria_v0.1"].values()) >= 6),
        ("math", lambda r: r["category_tag"]["math_v0.1"]["math"]),
        ("instruction_following", lambda r: r["category_tag"]["if_v0.1"]["if"]),
        (
            "creative_writing",
            lambda r: r["category_tag"]["creative_writing_v0.1"]["creative_writing"],
        ),
        ("multi_turn", lambda r: r["turn"] > 1),
        ("long_query", lambda r: r["conv_metadata"]["sum_user_tokens"] >= 500),
        ("language:German", lambda r: r["language"] == "German"),
        ("language:english", lambda r: r["language"] == "English"),
    ],
)
def test_categories(category, predicate, rows, frame):
    selected = select_battles(frame, EVERYTHING, category)
    assert selected.frame.height == sum(1 for r in rows if predicate(r))
    assert selected.frame.height > 0


def test_coding_category_from_tag_and_detection(make_rows):
    rows = make_rows(40, with_conversations=True)
    frame = normalize_rows(rows)
    coding = select_battles(frame, EVERYTHING, "coding").frame
    # Generated prompts every fourth battle carry a fenced python block in answer A.
    assert coding.height == 10
    rows[1]["is_code"] = True
    assert select_battles(normalize_rows(rows), EVERYTHING, "coding").frame.height == 11


def test_category_names_and_aliases():
    assert canonical_category("hard") == "hard_prompts"
    assert canonical_category("IF") == "instruction_following"
    assert canonical_category("Language:French") == "language:French"
    with pytest.raises(BadRequest, match="unknown category"):
        canonical_category("poetry")
    with pytest.raises(BadRequest):
        canonical_category("language:")


def test_available_categories(frame):
    found = available_categories(frame, min_battles=20)
    assert found[0] == "full"
    assert {"hard_prompts", "math", "multi_turn", "language:English", "language:German"} <= set(
        found
    )
    # No generated battle carries code without conversations.
    assert "coding" not in found


def test_select_reports_every_step(frame):
    selected = select_battles(frame, BattleFilters(min_votes=10, dedup_sampled_only=True), "math")
    names = [s.name for s in selected.steps]
    assert names == [
        "input",
        "distinct_models",
        "not_leaked",
        "anonymous",
        "dedup_sampled",
        "category:math",
        "min_votes",
    ]
    remaining = [s.remaining for s in selected.steps]
    assert remaining == sorted(remaining, reverse=True)
    assert isinstance(selected.frame, pl.DataFrame)
