"""Battles read straight from Arena's own database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from arena.leaderboard.battle_table import load_battles
from arena.leaderboard.build import describe_source
from arena.leaderboard.filters import BattleFilters, select_battles

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
VOTES = ["a", "b", "a", "tie", "a", "bothbad", "b", "a"]


def populate(url: str) -> dict[str, int]:
    from arena.store.battles import create_battle, update_battle
    from arena.store.conversations import add_message, battle_conversations
    from arena.store.db import Database
    from arena.store.migrate import upgrade
    from arena.store.sessions import create_session
    from arena.store.votes import record_vote

    upgrade(url)
    db = Database(url)
    try:
        session = create_session(db, ttl_s=3600)
        for i, vote in enumerate(VOTES):
            mode = "battle" if i != 2 else "side_by_side"
            battle = create_battle(
                db,
                mode=mode,
                model_a="strong" if i % 2 == 0 else "weak",
                model_b="weak" if i % 2 == 0 else "strong",
                session_id=session.id,
                now=T0 + timedelta(minutes=i),
            )
            conv_a, conv_b = battle_conversations(db, battle.id)
            for conv, answer in ((conv_a, "## Plan\n\n1. **one**\n2. two"), (conv_b, "ok")):
                add_message(db, conv.id, role="user", content=f"question {i}")
                add_message(db, conv.id, role="assistant", content=answer)
            if i == 4:
                update_battle(db, battle.id, leaked=True, leak_reason="said its name")
            record_vote(
                db,
                battle.id,
                vote,
                session_id=session.id,
                now=T0 + timedelta(minutes=i, seconds=30),
            )
    finally:
        db.dispose()
    return {"battles": len(VOTES)}


def test_database_url_as_input(own_database_url):
    database_url = own_database_url
    populate(database_url)
    loaded = load_battles(database_url)
    frame = loaded.frame
    assert loaded.count == len(VOTES)
    assert sorted(frame["winner"].to_list()) == sorted(
        {"a": "model_a", "b": "model_b", "tie": "tie", "bothbad": "tie (bothbad)"}[v] for v in VOTES
    )
    assert frame["leaked"].sum() == 1
    assert frame["anony"].sum() == len(VOTES) - 1
    # Style features come from the export's conv_metadata (markdown counted there).
    strong_side = frame.filter(frame["model_a"] == "strong").row(0, named=True)
    assert strong_side["header_count_a"] == 1
    assert strong_side["list_count_a"] == 2 and strong_side["bold_count_a"] == 1
    assert strong_side["header_count_b"] == 0
    # Leaked and non-anonymous battles are dropped by the default filters.
    kept = select_battles(frame, BattleFilters(), "full").frame
    assert kept.height == len(VOTES) - 2
    assert len(loaded.data_sha256) == 64
    assert load_battles(database_url).data_sha256 == loaded.data_sha256


def test_database_password_is_hidden():
    shown = describe_source("postgresql+psycopg://arena:s3cret@db.example:5432/arena")
    assert "s3cret" not in shown and "***" in shown


@pytest.mark.parametrize("url", ["sqlite:///x.db", "postgresql+psycopg://h/db", "postgres://h/d"])
def test_database_urls_are_recognized(url):
    from arena.leaderboard.battle_table import is_database_url

    assert is_database_url(url)
    assert not is_database_url("battles.jsonl")
