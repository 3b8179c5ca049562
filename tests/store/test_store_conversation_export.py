"""The public conversation export (``arena export conversations``): layout, scrubbing, who
is left out (opt-outs, flagged voters, failed answers), Parquet that the ``datasets``
library loads, the dataset card and the CLI. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from arena.cli import app
from arena.pipeline.release import export_conversations
from arena.store.battles import create_battle
from arena.store.conversation_export import iter_release_battles
from arena.store.conversations import add_message
from arena.store.models import Battle
from arena.store.pipeline_tables import BattleTag, VoterFlag
from arena.store.release_opt_outs import is_opted_out, opt_out_session
from arena.store.sessions import create_session, delete_expired_sessions
from arena.store.voter_flags import FlaggedVoter, replace_voter_flags, session_judge
from arena.store.votes import record_vote

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PROMPT = "Hi, I'm Laura Smith, mail me at laura.smith@example.com or call +1 650-253-0000."
ANSWER = "Sure Laura, I will write to laura.smith@example.com from 203.0.113.9."
SECRETS = ("Laura", "laura.smith@example.com", "650-253-0000", "203.0.113.9")
FIELDS = {
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "conversation_a",
    "conversation_b",
    "turn",
    "anony",
    "language",
    "tstamp",
    "moderation",
    "tags",
}


def _battle(db, session_id, *, vote="a", ip_hash=None, mode="battle", at=T0, fail=False):
    b = create_battle(db, mode=mode, model_a="alpha", model_b="beta", session_id=session_id, now=at)
    for conv in (b.conversation_a_id, b.conversation_b_id):
        add_message(db, conv, role="user", content=PROMPT)
    add_message(db, b.conversation_a_id, role="assistant", content=ANSWER)
    add_message(
        db,
        b.conversation_b_id,
        role="assistant",
        content="" if fail else "Plain answer.",
        error="upstream failed" if fail else None,
    )
    if vote:
        record_vote(
            db, b.id, vote, session_id=session_id, ip_hash=ip_hash, now=at + timedelta(seconds=9)
        )
    return b.id


def _tag(db, battle_id, name, value, tagger=None, version="1", status="ok"):
    with db.session() as s:
        s.add(
            BattleTag(
                battle_id=battle_id,
                name=name,
                value=value,
                status=status,
                tagger=tagger or name,
                version=version,
            )
        )


@pytest.fixture
def stocked(db):
    """Battles of four voters: kept, opted out (before and after its battles), flagged by IP,
    flagged by session; plus a failed answer, an unvoted battle and a direct chat."""
    kept, early, late, flagged_ip, flagged_session = (
        create_session(db, ttl_s=3600).id for _ in range(5)
    )
    ids = {"kept": _battle(db, kept, vote="b", ip_hash="ip-kept")}
    ids["named"] = _battle(db, kept, vote="tie", mode="side_by_side", at=T0 + timedelta(1))
    ids["failed"] = _battle(db, kept, fail=True)
    ids["unvoted"] = _battle(db, kept, vote=None)
    direct = create_battle(db, mode="direct", model_a="alpha", session_id=kept)
    add_message(db, direct.conversation_a_id, role="user", content="q")
    answer = add_message(db, direct.conversation_a_id, role="assistant", content="a")
    record_vote(db, direct.id, "upvote", message_id=answer.id)

    ids["late_before"] = _battle(db, late)
    assert opt_out_session(db, late) is True
    assert opt_out_session(db, late) is False  # safe to repeat
    ids["late_after"] = _battle(db, late)  # created after the opt-out
    assert opt_out_session(db, early) is True
    ids["early"] = _battle(db, early)
    ids["flagged_ip"] = _battle(db, flagged_ip, ip_hash="ip-flagged")
    ids["flagged_session"] = _battle(db, flagged_session)
    with db.session() as s:
        for kind, voter in (("ip", "ip-flagged"), ("session", session_judge(flagged_session))):
            s.add(
                VoterFlag(
                    voter_kind=kind,
                    voter_hash=voter,
                    votes=40,
                    statistic=9.0,
                    p_value=1e-6,
                    reason="votes for one model whatever it answers",
                    screen_version="1",
                )
            )
    _tag(db, ids["kept"], "language", "English")
    _tag(db, ids["kept"], "is_code", False, tagger="coding")
    _tag(db, ids["kept"], "prompt_hash", "f" * 64)
    _tag(db, ids["kept"], "criteria_v0.1", {"specificity": True}, tagger="hard_prompt")
    _tag(db, ids["kept"], "math_v0.1", None, tagger="math", status="unparsable")
    _tag(
        db,
        ids["kept"],
        "moderation",
        {"flagged": True, "categories": ["blocked_words"], "flagged_turns": [1]},
    )
    ids["sessions"] = {"kept": kept, "late": late, "early": early}
    return ids


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_release_rows_layout_scrubbing_and_exclusions(db, stocked, tmp_path) -> None:
    out = tmp_path / "release" / "conversations.jsonl"
    report = export_conversations(db, out, fmt="jsonl")
    rows = _rows(out)
    assert [r["question_id"] for r in rows] == [stocked["kept"], stocked["named"]]
    assert all(set(r) == FIELDS for r in rows)
    assert report.rows == 2
    assert report.excluded == Counter(opted_out=3, flagged_voter=2, failed_answer=1)

    kept, named = rows
    assert (kept["winner"], kept["anony"], kept["turn"]) == ("model_b", True, 1)
    assert (named["winner"], named["anony"]) == ("tie", False)
    assert kept["tstamp"] == (T0 + timedelta(seconds=9)).timestamp()
    assert kept["language"] == "English" and named["language"] == "unknown"
    assert kept["moderation"] == {
        "flagged": True,
        "categories": ["blocked_words"],
        "flagged_turns": [1],
    }
    assert named["moderation"] == {"flagged": False, "categories": [], "flagged_turns": []}
    # Released tags: only parsed ones, and never the hash of the unscrubbed prompt.
    assert kept["tags"] == {"criteria_v0.1": {"specificity": True}, "is_code": False}
    assert named["tags"] == {}

    assert kept["conversation_a"] == [
        {"role": "user", "content": "Hi, I'm <NAME>, mail me at <EMAIL> or call <PHONE>."},
        {"role": "assistant", "content": "Sure <NAME>, I will write to <EMAIL> from <IP>."},
    ]
    assert kept["conversation_b"][1] == {"role": "assistant", "content": "Plain answer."}
    assert report.scrubbed["email"] == 2 * 3 and report.scrubbed["phone"] == 2 * 2

    # The judge is hashed again: neither the stored IP hash nor the session id appears.
    raw = out.read_text(encoding="utf-8")
    assert kept["judge"].startswith("arena_user_") and "ip-kept" not in raw
    assert kept["judge"] != named["judge"]  # one session voted by IP, the other by session
    for secret in (*SECRETS, "f" * 64, *stocked["sessions"].values()):
        assert secret not in raw

    card = (tmp_path / "release" / "README.md").read_text(encoding="utf-8")
    assert "2 battles (1 anonymous, 1 named side by side) between 2 models" in card
    assert "| opted_out | 3 |" in card and "| flagged_voter | 2 |" in card
    assert "| failed_answer | 1 |" in card
    assert "| English | 1 |" in card and "| unknown | 1 |" in card
    assert "LICENCE PLACEHOLDER" in card and "| `<EMAIL>` |" in card
    assert "| coding | 1 | 1 |" in card and "prompt_hash" not in card


def test_opt_out_marks_past_and_future_battles(db, stocked) -> None:
    with db.session(read_only=True) as s:
        excluded = dict(s.execute(select(Battle.id, Battle.release_excluded)).all())
    for name in ("late_before", "late_after", "early"):
        assert excluded[stocked[name]] is True
    for name in ("kept", "named", "flagged_ip"):
        assert excluded[stocked[name]] is False
    assert is_opted_out(db, stocked["sessions"]["late"])
    assert not is_opted_out(db, stocked["sessions"]["kept"])


def test_release_reads_in_batches(db, stocked) -> None:
    for i in range(5):
        _battle(db, stocked["sessions"]["kept"], at=T0 + timedelta(hours=i + 1))
    excluded: Counter[str] = Counter()
    small = [b.battle_id for b in iter_release_battles(db, excluded, batch_size=2)]
    excluded_big: Counter[str] = Counter()
    whole = [b.battle_id for b in iter_release_battles(db, excluded_big, batch_size=1000)]
    assert small == whole and len(whole) == 7
    assert excluded == excluded_big


def test_flags_hold_after_the_purge_and_spare_cleared_sessions_behind_a_flagged_ip(db) -> None:
    """The release leaves out a flagged session's votes after its session row is purged,
    and behind a flagged IP keeps only the sessions the screen cleared."""
    past = datetime.now(UTC) - timedelta(days=2)
    bad, cleared, untested = (create_session(db, ttl_s=60, now=past).id for _ in range(3))
    names = {
        _battle(db, bad): "flagged session",
        _battle(db, bad, ip_hash="ip-other"): "flagged session, other IP",
        _battle(db, cleared, ip_hash="nat"): "cleared behind the NAT",
        _battle(db, untested, ip_hash="nat"): "untested behind the NAT",
        _battle(db, None, ip_hash="nat"): "no session behind the NAT",
    }
    flags = [
        FlaggedVoter("session", session_judge(bad), 24, 9.0, 1e-6, "test flag", "1"),
        FlaggedVoter("ip", "nat", 48, 9.0, 1e-6, "test flag", "1"),
    ]
    replace_voter_flags(db, flags, cleared_sessions=[session_judge(cleared)], screen_version="1")
    assert delete_expired_sessions(db) == 3

    excluded: Counter[str] = Counter()
    released = list(iter_release_battles(db, excluded))
    assert [names[b.battle_id] for b in released] == ["cleared behind the NAT"]
    assert released[0].judge == "arena_user_nat"
    assert excluded == Counter(flagged_voter=4)


def test_parquet_loads_with_the_datasets_library(db, stocked, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets

    export_conversations(db, tmp_path / "c.jsonl", fmt="jsonl")
    export_conversations(db, tmp_path / "c.parquet", fmt="parquet")
    expected = _rows(tmp_path / "c.jsonl")
    for row in expected:
        row["tags"] = json.dumps(row["tags"], ensure_ascii=False)  # one type per column

    table = pq.read_table(tmp_path / "c.parquet")
    assert table.to_pylist() == expected
    loaded = datasets.load_dataset(
        "parquet",
        data_files=str(tmp_path / "c.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert loaded.num_rows == 2 and set(loaded.column_names) == FIELDS
    assert loaded[0]["conversation_a"][0]["content"].startswith("Hi, I'm <NAME>")
    assert json.loads(loaded[0]["tags"]) == {
        "criteria_v0.1": {"specificity": True},
        "is_code": False,
    }
    assert loaded[0]["moderation"]["categories"] == ["blocked_words"]


def test_empty_release_still_has_the_schema(db, tmp_path) -> None:
    report = export_conversations(db, tmp_path / "e.parquet", fmt="parquet")
    table = pq.read_table(tmp_path / "e.parquet")
    assert report.rows == 0 and table.num_rows == 0 and set(table.column_names) == FIELDS
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "0 battles" in card and "No pipeline tags" in card
    assert "load_dataset('parquet', data_files='e.parquet', split='train')" in card
    with pytest.raises(ValueError):
        export_conversations(db, tmp_path / "e.csv", fmt="csv")
    assert not (tmp_path / "e.csv").exists()


def _said(result, text: str) -> bool:
    """Does the CLI's output say ``text`` (Rich wraps error panels at any width)?"""
    flat = " ".join(result.output.replace("│", " ").split())
    return " ".join(text.split()) in flat


def test_cli_export_conversations(db, stocked, database_url, tmp_path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli" / "conversations.parquet"
    args = ["export", "conversations", "--format", "parquet", "--out", str(out)]
    result = runner.invoke(app, [*args, "--database-url", database_url])
    assert result.exit_code == 0, result.output
    assert "wrote 2 battles" in result.output
    assert "1 failed_answer, 2 flagged_voter, 3 opted_out" in result.output
    assert pq.read_table(out).num_rows == 2 and (out.parent / "README.md").exists()

    bad_region = runner.invoke(app, [*args, "--database-url", database_url, "--phone-region", "XX"])
    assert bad_region.exit_code == 2 and _said(bad_region, "unknown region XX")
    missing = runner.invoke(app, [*args, "--database-url", f"sqlite:///{tmp_path}/none.db"])
    assert missing.exit_code == 2 and _said(missing, "no database file")
    (tmp_path / "blank.db").touch()
    blank = runner.invoke(app, [*args, "--database-url", f"sqlite:///{tmp_path}/blank.db"])
    assert blank.exit_code == 2 and _said(blank, "run `arena db upgrade` first")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "README.md").write_text("# My project\n", encoding="utf-8")
    clobber = runner.invoke(
        app,
        [*args[:-1], str(tmp_path / "project" / "c.parquet"), "--database-url", database_url],
    )
    assert clobber.exit_code == 2 and _said(clobber, "is not a dataset card")
    assert (tmp_path / "project" / "README.md").read_text(encoding="utf-8") == "# My project\n"
    assert not (tmp_path / "project" / "c.parquet").exists()
    again = runner.invoke(app, [*args, "--database-url", database_url])  # its own card: fine
    assert again.exit_code == 0, again.output
    into_dir = runner.invoke(
        app, ["export", "conversations", "--out", str(tmp_path), "--database-url", database_url]
    )
    assert into_dir.exit_code == 2 and _said(into_dir, "is a directory")
    assert "Traceback" not in missing.output + blank.output + bad_region.output
