"""Loaders: the public preference layout (JSONL, JSON, Parquet, clean-battle exports), Arena's
store (SQLite and PostgreSQL), judge verdicts with their questions; held-out splits by prompt."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from arena.routing.data import (
    load_from_store,
    load_judge_verdicts,
    load_preference_file,
    split_by_prompt,
)
from arena.routing.errors import RoutingError
from arena.store.battles import create_battle, update_battle
from arena.store.conversations import add_message
from arena.store.votes import record_vote

from .conftest import pair_battles, preference_rows, write_jsonl

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_split_is_by_prompt_never_by_row():
    prompts = [f"prompt {i % 300}" for i in range(1200)]  # every prompt four times
    test = split_by_prompt(prompts, test_fraction=0.3, seed=1)
    held = {p for p, t in zip(prompts, test, strict=True) if t}
    trained = {p for p, t in zip(prompts, test, strict=True) if not t}
    assert not held & trained
    assert 0.22 < len(held) / 300 < 0.38
    assert (split_by_prompt(prompts, test_fraction=0.3, seed=1) == test).all()
    assert (split_by_prompt(prompts, test_fraction=0.3, seed=2) != test).any()
    with pytest.raises(RoutingError):
        split_by_prompt(prompts, test_fraction=1.0)


def test_jsonl_json_and_parquet_files(tmp_path):
    data = pair_battles(30, seed=0)
    rows = preference_rows(data)
    jsonl = load_preference_file(write_jsonl(tmp_path / "b.jsonl", rows))
    assert jsonl.prompts == data.prompts
    assert jsonl.winner.tolist() == data.winner.tolist()
    array = tmp_path / "b.json"
    array.write_text(json.dumps(rows))
    assert load_preference_file(array).prompts == data.prompts
    parquet = tmp_path / "b.parquet"
    pl.DataFrame(rows).write_parquet(parquet)
    loaded = load_preference_file(parquet)
    assert loaded.model_a.tolist() == data.model_a.tolist()


def test_clean_battle_layout_gives_the_first_user_message(tmp_path):
    row = {
        "model_a": "x",
        "model_b": "y",
        "winner": "tie (bothbad)",
        "conversation_a": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "first question"}]},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": "second"},
        ],
    }
    data = load_preference_file(write_jsonl(tmp_path / "c.jsonl", [row]))
    assert data.prompts == ("first question",)
    assert data.winner.tolist() == ["tie (bothbad)"]


def test_bad_preference_rows(tmp_path):
    good = {"prompt": "p", "model_a": "x", "model_b": "y", "winner": "model_a"}
    with pytest.raises(RoutingError, match="row 2 lacks prompt"):
        load_preference_file(write_jsonl(tmp_path / "a.jsonl", [good, {**good, "prompt": ""}]))
    with pytest.raises(RoutingError, match="winner 'left'"):
        load_preference_file(write_jsonl(tmp_path / "b.jsonl", [{**good, "winner": "left"}]))
    with pytest.raises(RoutingError, match="no battles"):
        load_preference_file(write_jsonl(tmp_path / "c.jsonl", [{**good, "model_b": "x"}]))
    (tmp_path / "d.jsonl").write_text("{not json\n")
    with pytest.raises(RoutingError, match="not JSON"):
        load_preference_file(tmp_path / "d.jsonl")
    weighted = load_preference_file(
        write_jsonl(tmp_path / "w.jsonl", [{**good, "weight": 0}, {**good, "weight": 2.5}, good])
    )
    assert weighted.weights.tolist() == [0.0, 2.5, 1.0]
    with pytest.raises(RoutingError, match="weight 'heavy'"):
        load_preference_file(write_jsonl(tmp_path / "x.jsonl", [{**good, "weight": "heavy"}]))
    with pytest.raises(RoutingError, match="no such file"):
        load_preference_file(tmp_path / "missing.jsonl")


def _voted(db, prompt, vote, *, leaked=False, at=T0):
    b = create_battle(db, mode="battle", model_a="alpha", model_b="beta", now=at)
    for conv in (b.conversation_a_id, b.conversation_b_id):
        add_message(db, conv, role="user", content=prompt)
    add_message(db, b.conversation_a_id, role="assistant", content="a says")
    add_message(db, b.conversation_b_id, role="assistant", content="b says")
    if leaked:
        update_battle(db, b.id, leaked=True, leak_reason="named itself")
    if vote:
        record_vote(db, b.id, vote, ip_hash="h", now=at + timedelta(seconds=5))
    return b


def test_store_battles_with_their_first_prompt(store_db):
    _voted(store_db, "integral of x", "a")
    _voted(store_db, "hello there", "tie", at=T0 + timedelta(minutes=1))
    _voted(store_db, "leaked one", "b", leaked=True, at=T0 + timedelta(minutes=2))
    _voted(store_db, "never voted", None, at=T0 + timedelta(minutes=3))
    data = load_from_store(store_db)
    assert data.prompts == ("integral of x", "hello there")
    assert data.winner.tolist() == ["model_a", "tie"]
    assert set(data.models) == {"alpha", "beta"}


def test_store_without_votes_is_a_clear_error(store_db):
    with pytest.raises(RoutingError, match="no battles"):
        load_from_store(store_db)


def test_judge_verdicts_with_questions(tmp_path):
    questions = write_jsonl(
        tmp_path / "q.jsonl",
        [
            {"question_id": 1, "category": "math", "turns": ["What is 2+2?", "And 3+3?"]},
            {"question_id": 2, "category": "writing", "turns": ["Write a haiku."]},
        ],
    )
    pair = write_jsonl(
        tmp_path / "pair.jsonl",
        [
            {"question_id": 1, "model_1": "m1", "model_2": "m2", "g1_winner": "model_1",
             "g2_winner": "model_1", "judge": ["gpt-4", "pair-v2"], "turn": 1},
            {"question_id": 1, "model_1": "m1", "model_2": "m2", "g1_winner": "model_2",
             "g2_winner": "model_1", "judge": ["gpt-4", "pair-v2"], "turn": 2},
            {"question_id": 2, "model_1": "m1", "model_2": "m2", "g1_winner": "error",
             "g2_winner": "model_2", "judge": ["gpt-4", "pair-v2"], "turn": 1},
            {"question_id": 9, "model_1": "m1", "model_2": "m2", "g1_winner": "model_2",
             "g2_winner": "model_2", "judge": ["gpt-4", "pair-v2"], "turn": 1},
        ],
    )  # fmt: skip
    data = load_judge_verdicts([pair], questions)
    # q1 turn 1: m1 wins; q1 turn 2: the judge disagreed with itself → tie (first turn's
    # prompt); q2 failed a game → left out; q9 names no question → left out
    assert data.prompts == ("What is 2+2?", "What is 2+2?")
    assert data.winner.tolist() == ["model_a", "tie"]
    with pytest.raises(RoutingError, match="names a question"):
        load_judge_verdicts([write_jsonl(tmp_path / "o.jsonl", [json.loads(
            '{"question_id": 7, "model_1": "a", "model_2": "b", "g1_winner": "model_1",'
            ' "g2_winner": "model_1"}')])], questions)  # fmt: skip
