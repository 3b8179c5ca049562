"""Export of voted battles in the public clean-battle layout: JSON Lines and Parquet, the
winner mapping, conv_metadata, the leak filter and the CLI."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from arena.cli import app
from arena.pipeline.markdown_stats import approx_token_count, markdown_counts
from arena.store.battles import create_battle, update_battle
from arena.store.conversations import add_message
from arena.store.export import clean_battles, export_battles
from arena.store.models import utcnow
from arena.store.pipeline_tables import VoterFlag
from arena.store.sessions import create_session, delete_expired_sessions
from arena.store.voter_flags import FlaggedVoter, replace_voter_flags, session_judge
from arena.store.votes import record_vote

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ANSWER_A1 = "# Title\n\nSome **bold** and __more__.\n\n- one\n- two\n"
ANSWER_A2_OLD = "first try, regenerated away"
ANSWER_A2 = "1. first\n2. second\n\n```python\n# not a header\n```\n"
ANSWER_B1 = "Plain answer."
ANSWER_B2 = "## Sub\n\n* item\n"
COLUMNS = {
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "turn",
    "anony",
    "language",
    "tstamp",
    "conversation_a",
    "conversation_b",
    "conv_metadata",
    "leaked",
    "moderation_flagged",
    "is_code",
    "category_tag",
    "dedup_tag",
}


def _two_model_battle(db, *, mode="battle", vote=None, leaked=False, ip_hash="iphash", at=T0):
    b = create_battle(db, mode=mode, model_a="alpha", model_b="beta", now=at)
    for conv in (b.conversation_a_id, b.conversation_b_id):
        add_message(db, conv, role="user", content="Hello there")
    add_message(db, b.conversation_a_id, role="assistant", content="hi a")
    add_message(db, b.conversation_b_id, role="assistant", content="hi b")
    if leaked:
        update_battle(db, b.id, leaked=True, leak_reason="named itself")
    if vote:
        record_vote(db, b.id, vote, ip_hash=ip_hash, now=at + timedelta(seconds=5))
    return b


@pytest.fixture
def filled(db):
    """A database with battles of every kind; returns the ids that matter."""
    s = create_session(db, ttl_s=3600)
    rich = create_battle(db, mode="battle", model_a="alpha", model_b="beta", session_id=s.id)
    a, b = rich.conversation_a_id, rich.conversation_b_id
    for conv in (a, b):
        add_message(db, conv, role="user", content="Explain lists please")
    add_message(db, a, role="assistant", content=ANSWER_A1, prompt_tokens=7, completion_tokens=40)
    add_message(db, b, role="assistant", content=ANSWER_B1)  # no usage recorded
    for conv in (a, b):
        add_message(db, conv, role="user", content="And numbered ones?")
    add_message(db, a, role="assistant", content=ANSWER_A2_OLD, completion_tokens=5)
    add_message(db, a, role="assistant", content=ANSWER_A2, prompt_tokens=60, completion_tokens=20)
    add_message(db, b, role="assistant", content=ANSWER_B2)
    record_vote(db, rich.id, "a", session_id=s.id, ip_hash=None, now=T0)

    ids = {
        "rich": rich.id,
        "b": _two_model_battle(db, vote="b", at=T0 + timedelta(minutes=1)).id,
        "tie": _two_model_battle(db, vote="tie", leaked=True, at=T0 + timedelta(minutes=2)).id,
        "bothbad": _two_model_battle(
            db, mode="side_by_side", vote="bothbad", at=T0 + timedelta(minutes=3)
        ).id,
        "unvoted": _two_model_battle(db).id,
    }
    direct = create_battle(db, mode="direct", model_a="alpha")
    add_message(db, direct.conversation_a_id, role="user", content="q")
    answer = add_message(db, direct.conversation_a_id, role="assistant", content="a")
    record_vote(db, direct.id, "upvote", message_id=answer.id)
    ids["session"] = s.id
    return ids


def test_clean_battles_layout(db, filled) -> None:
    rows = clean_battles(db)
    assert [r["question_id"] for r in rows] == [
        filled["rich"],
        filled["b"],
        filled["tie"],
        filled["bothbad"],
    ]
    assert all(set(r) == COLUMNS for r in rows)
    assert [r["winner"] for r in rows] == ["model_a", "model_b", "tie", "tie (bothbad)"]
    assert [r["anony"] for r in rows] == [True, True, True, False]
    assert [r["leaked"] for r in rows] == [False, False, True, False]
    assert {r["language"] for r in rows} == {"unknown"}
    assert rows[0]["tstamp"] == T0.timestamp()
    # The session id is the visitor's cookie: only a one-way hash of it may be published.
    expected = hashlib.sha256(filled["session"].encode()).hexdigest()[:32]
    assert rows[0]["judge"] == f"arena_user_s{expected}"
    assert filled["session"] not in json.dumps(rows)
    assert rows[1]["judge"] == "arena_user_iphash"

    rich = rows[0]
    assert (rich["model_a"], rich["model_b"], rich["turn"]) == ("alpha", "beta", 2)
    assert rich["conversation_a"] == [
        {"role": "user", "content": "Explain lists please"},
        {"role": "assistant", "content": ANSWER_A1},
        {"role": "user", "content": "And numbered ones?"},
        {"role": "assistant", "content": ANSWER_A2},  # the regenerated answer, not the old one
    ]
    assert [m["content"] for m in rich["conversation_b"]][1::2] == [ANSWER_B1, ANSWER_B2]

    meta = rich["conv_metadata"]
    user_tokens = approx_token_count("Explain lists please") + approx_token_count(
        "And numbered ones?"
    )
    assert meta["sum_user_tokens"] == user_tokens
    assert meta["sum_assistant_a_tokens"] == 40 + 20  # recorded usage wins
    approx_b = approx_token_count(ANSWER_B1) + approx_token_count(ANSWER_B2)
    assert meta["sum_assistant_b_tokens"] == approx_b
    assert meta["context_a_tokens"] == 60  # the upstream's prompt size for the last answer
    assert meta["context_b_tokens"] == user_tokens + approx_token_count(ANSWER_B1)
    assert meta["turns"] == 2

    a1, a2 = markdown_counts(ANSWER_A1), markdown_counts(ANSWER_A2)
    assert meta["header_count_a"] == {"h1": 1, "h2": 0, "h3": 0, "h4": 0, "h5": 0, "h6": 0}
    assert meta["bold_count_a"] == {"**": 1, "__": 1}
    assert meta["list_count_a"] == {"ordered": 2, "unordered": 2}
    assert a1["list_count"]["unordered"] + a2["list_count"]["unordered"] == 2
    assert meta["header_count_b"]["h2"] == 1 and meta["list_count_b"]["unordered"] == 1

    assert [r["question_id"] for r in clean_battles(db, anony_only=True)] == [
        filled["rich"],
        filled["b"],
        filled["tie"],
    ]
    assert filled["tie"] not in {r["question_id"] for r in clean_battles(db, include_leaked=False)}


def test_jsonl_and_parquet_round_trip(db, filled, tmp_path) -> None:
    expected = clean_battles(db, include_leaked=False)
    assert len(expected) == 3

    assert export_battles(db, tmp_path / "b.jsonl", fmt="jsonl") == 3
    lines = (tmp_path / "b.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == expected

    assert export_battles(db, tmp_path / "b.parquet", fmt="parquet") == 3
    frame = pl.read_parquet(tmp_path / "b.parquet")
    assert set(frame.columns) == COLUMNS
    assert frame.to_dicts() == expected
    assert frame["winner"].to_list() == ["model_a", "model_b", "tie (bothbad)"]
    table = pq.read_table(tmp_path / "b.parquet")
    assert table.num_rows == 3 and str(table.schema.field("tstamp").type) == "double"

    assert export_battles(db, tmp_path / "all.parquet", fmt="parquet", include_leaked=True) == 4
    leaked = pl.read_parquet(tmp_path / "all.parquet").filter(pl.col("leaked"))
    assert leaked["question_id"].to_list() == [filled["tie"]]


def test_empty_export_keeps_columns(db, tmp_path) -> None:
    assert export_battles(db, tmp_path / "e.parquet", fmt="parquet") == 0
    frame = pl.read_parquet(tmp_path / "e.parquet")
    assert frame.height == 0 and set(frame.columns) == COLUMNS
    assert export_battles(db, tmp_path / "e.jsonl", fmt="jsonl") == 0
    assert (tmp_path / "e.jsonl").read_text() == ""
    with pytest.raises(ValueError):
        export_battles(db, tmp_path / "e.csv", fmt="csv")
    assert not (tmp_path / "e.csv").exists()


def test_leaderboard_reads_the_export(db, filled, tmp_path) -> None:
    from arena.leaderboard.battle_table import load_battles

    export_battles(db, tmp_path / "b.parquet", fmt="parquet", include_leaked=True)
    export_battles(db, tmp_path / "b.jsonl", fmt="jsonl", include_leaked=True)
    for path in (tmp_path / "b.parquet", tmp_path / "b.jsonl"):
        loaded = load_battles(path)
        assert loaded.count == 4
        assert loaded.frame["leaked"].to_list() == [False, False, True, False]


def test_cli_export_and_upgrade(database_url, tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["db", "upgrade", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "revision" in result.output
    from arena.store.db import Database

    db = Database(database_url)
    try:
        from sqlalchemy import text

        from arena.store.models import Base

        if db.engine.dialect.name == "postgresql":  # shared database: start empty
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        _two_model_battle(db, vote="a")
        _two_model_battle(db, vote="tie", leaked=True)
    finally:
        db.dispose()

    out = tmp_path / "out" / "battles.parquet"
    args = ["export", "battles", "--format", "parquet", "--out", str(out)]
    result = runner.invoke(app, [*args, "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "wrote 1 battles" in result.output
    assert pl.read_parquet(out)["winner"].to_list() == ["model_a"]
    result = runner.invoke(app, [*args, "--database-url", database_url, "--include-leaked"])
    assert result.exit_code == 0, result.output
    assert sorted(pl.read_parquet(out)["winner"].to_list()) == ["model_a", "tie"]


def test_cli_export_refuses_missing_or_unmigrated_database(tmp_path) -> None:
    runner = CliRunner()
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    out = str(tmp_path / "x.jsonl")
    result = runner.invoke(app, ["export", "battles", "--out", out, "--database-url", missing])
    assert result.exit_code == 2 and "no database file" in result.output
    assert not (tmp_path / "nope.db").exists()

    from arena.store.db import Database

    blank = f"sqlite:///{tmp_path / 'blank.db'}"
    with Database(blank).engine.connect():
        pass
    result = runner.invoke(app, ["export", "battles", "--out", out, "--database-url", blank])
    assert result.exit_code == 2 and "arena db upgrade" in result.output
    result = runner.invoke(app, ["export", "battles", "--out", out, "--format", "csv"])
    assert result.exit_code == 2


def test_flags_exclude_a_vote_by_its_session_or_its_ip(db) -> None:
    """A session flag takes out that session's votes whatever IP they came from, an IP flag
    that IP's votes whatever session; a flag holds for its own kind only; ``judge`` stays
    the IP hash, else the session's hash."""
    flagged_session, other = (create_session(db, ttl_s=3600).id for _ in range(2))
    votes = {  # name: (ip_hash, session_id)
        "session, fresh IP 1": ("ip-1", flagged_session),
        "session, fresh IP 2": ("ip-2", flagged_session),
        "session, no IP": (None, flagged_session),
        "flagged IP": ("ip-flagged", other),
        "hash of the flagged session as an IP": (session_judge(flagged_session), None),
        "clean": ("ip-3", other),
    }
    ids = {}
    for name, (ip_hash, session_id) in votes.items():
        b = create_battle(db, mode="battle", model_a="alpha", model_b="beta", session_id=session_id)
        for conv in (b.conversation_a_id, b.conversation_b_id):
            add_message(db, conv, role="user", content="Hello there")
            add_message(db, conv, role="assistant", content="hi")
        record_vote(db, b.id, "a", ip_hash=ip_hash, session_id=session_id)
        ids[b.id] = name
    with db.session() as s:
        for kind, voter_hash in (("session", session_judge(flagged_session)), ("ip", "ip-flagged")):
            s.add(
                VoterFlag(
                    voter_kind=kind, voter_hash=voter_hash, votes=3, statistic=9.0,
                    p_value=1e-4, reason="test flag", screen_version="test", flagged_at=utcnow(),
                )
            )  # fmt: skip

    counts: dict[str, int] = {}
    kept = clean_battles(db, counts=counts)
    assert sorted(ids[r["question_id"]] for r in kept) == [
        "clean",
        "hash of the flagged session as an IP",
    ]
    assert counts == {"flagged_excluded": 4}
    everything = clean_battles(db, include_flagged=True)
    judges = {ids[r["question_id"]]: r["judge"] for r in everything}
    assert judges["session, fresh IP 1"] == "arena_user_ip-1"
    assert judges["session, no IP"] == f"arena_user_{session_judge(flagged_session)}"


def _voted(db, *, ip_hash, session_id) -> str:
    b = create_battle(db, mode="battle", model_a="alpha", model_b="beta", session_id=session_id)
    for conv in (b.conversation_a_id, b.conversation_b_id):
        add_message(db, conv, role="user", content="Hello there")
        add_message(db, conv, role="assistant", content="hi")
    record_vote(db, b.id, "a", ip_hash=ip_hash, session_id=session_id)
    return b.id


def _flag(kind: str, voter_hash: str) -> FlaggedVoter:
    return FlaggedVoter(kind, voter_hash, 24, 9.0, 1e-4, "test flag", "test")


def test_a_session_flag_outlives_the_purge_of_expired_sessions(db) -> None:
    """Purging expired sessions clears ``votes.session_id``; the session hash stored with
    the vote keeps a flagged session's votes out, and ``judge`` does not change."""
    past = utcnow() - timedelta(days=2)
    flagged, honest = (create_session(db, ttl_s=60, now=past).id for _ in range(2))
    ids = {
        _voted(db, ip_hash=None, session_id=flagged): "flagged, no IP",
        _voted(db, ip_hash="ip-9", session_id=flagged): "flagged, an IP",
        _voted(db, ip_hash=None, session_id=honest): "honest",
    }
    replace_voter_flags(db, [_flag("session", session_judge(flagged))])
    judges_before = {r["question_id"]: r["judge"] for r in clean_battles(db, include_flagged=True)}

    assert delete_expired_sessions(db) == 2
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM votes WHERE session_id IS NULL")).scalar() == 3

    counts: dict[str, int] = {}
    assert [ids[r["question_id"]] for r in clean_battles(db, counts=counts)] == ["honest"]
    assert counts == {"flagged_excluded": 2}
    judges_after = {r["question_id"]: r["judge"] for r in clean_battles(db, include_flagged=True)}
    assert judges_after == judges_before
    assert set(judges_after.values()) == {
        f"arena_user_{session_judge(flagged)}",
        "arena_user_ip-9",
        f"arena_user_{session_judge(honest)}",
    }


def test_an_ip_flag_spares_the_sessions_the_screen_cleared(db) -> None:
    """Behind a flagged IP (a NAT), a session the screen tested and cleared keeps its votes;
    an untested session and a vote without a session go with the IP; a flagged session
    goes whatever its IP."""
    cleared, untested, bad = (create_session(db, ttl_s=3600).id for _ in range(3))
    ids = {
        _voted(db, ip_hash="nat", session_id=cleared): "cleared session",
        _voted(db, ip_hash="nat", session_id=untested): "untested session",
        _voted(db, ip_hash="nat", session_id=None): "no session",
        _voted(db, ip_hash="nat", session_id=bad): "flagged session",
        _voted(db, ip_hash="ip-2", session_id=untested): "untested session, other IP",
    }
    flags = [_flag("ip", "nat"), _flag("session", session_judge(bad))]
    replace_voter_flags(
        db,
        flags,
        cleared_sessions=[session_judge(cleared), session_judge(bad)],
        screen_version="test",
    )
    counts: dict[str, int] = {}
    kept = sorted(ids[r["question_id"]] for r in clean_battles(db, counts=counts))
    assert kept == ["cleared session", "untested session, other IP"]
    assert counts == {"flagged_excluded": 3}
    # A later screen replaces the cleared sessions with the flags: without them the NAT's
    # flag takes every vote behind it.
    replace_voter_flags(db, flags)
    kept = sorted(ids[r["question_id"]] for r in clean_battles(db))
    assert kept == ["untested session, other IP"]
