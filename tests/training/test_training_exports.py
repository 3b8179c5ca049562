"""`arena export sft` and `arena export preferences`: from the store (SQLite and PostgreSQL)
or a battles file, selected by the pipeline's tags, flagged voters left out, scrubbed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from arena.cli import app
from arena.store.pipeline_tables import BattleTag, VoterFlag
from pipeline.pipeline_store import add_battle
from support.empty_store import empty_store

runner = CliRunner()
EMAIL = "jane.doe@example.com"


def _tag(db, battle_id, name, value):
    with db.session() as s:
        s.add(BattleTag(battle_id=battle_id, name=name, value=value, status="ok",
                        tagger=name, version="1"))  # fmt: skip


@pytest.fixture
def stocked(database_url):
    with empty_store(database_url) as db:
        ids = {
            "english": add_battle(db, [f"Please write to {EMAIL} for me"], vote="a"),
            "german": add_battle(db, ["Wie geht es dir?"], vote="b"),
            "tie": add_battle(db, ["A tie prompt"], vote="tie"),
            "bothbad": add_battle(db, ["A bad prompt"], vote="bothbad"),
            "flagged": add_battle(db, ["From a flagged voter"], vote="a", ip_hash="bad-voter"),
            "code": add_battle(db, ["Fix my python", "And the tests?"], vote="a"),
            "named": add_battle(db, ["Named prompt"], vote="b", mode="side_by_side"),
            "repeat": add_battle(db, ["Over-asked prompt"], vote="a"),
        }
        for key in ids:
            _tag(db, ids[key], "language", "German" if key == "german" else "English")
        _tag(db, ids["code"], "is_code", True)
        _tag(db, ids["repeat"], "dedup", {"high_freq": True, "sampled": False})
        with db.session() as s:
            s.add(VoterFlag(voter_kind="ip", voter_hash="bad-voter", votes=40, statistic=9.0,
                            p_value=1e-6, reason="one-sided", screen_version="1"))  # fmt: skip
        yield database_url, ids


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _export(*args):
    result = runner.invoke(app, ["export", *[str(a) for a in args]])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_sft_export_from_the_store(stocked, tmp_path):
    url, ids = stocked
    out = tmp_path / "sft.jsonl"
    result = _export("sft", "--database-url", url, "--out", out)
    rows = _rows(out)
    by_id = {}
    for row in rows:
        by_id.setdefault(row["question_id"], []).append(row)
    # winners' sides; both sides of a tie; nothing of both-bad, flagged or unsampled battles
    assert set(by_id) == {ids[k] for k in ("english", "german", "tie", "code", "named")}
    assert [r["model"] for r in by_id[ids["german"]]] == ["beta"]
    assert sorted(r["model"] for r in by_id[ids["tie"]]) == ["alpha", "beta"]
    english = by_id[ids["english"]][0]["messages"]
    assert english[0] == {"role": "user", "content": "Please write to <EMAIL> for me"}
    assert english[1] == {"role": "assistant", "content": "answer a0"}
    assert len(by_id[ids["code"]][0]["messages"]) == 4
    assert EMAIL not in out.read_text()
    assert "2 email" in result.output and "1 flagged_voter" in result.output
    assert "1 both_bad" in result.output

    coding = tmp_path / "coding.jsonl"
    _export("sft", "--database-url", url, "--out", coding, "--category", "coding",
            "--format", "sharegpt", "--sides", "all")  # fmt: skip
    rows = _rows(coding)
    assert [r["question_id"] for r in rows] == [ids["code"]] * 2
    assert rows[0]["conversations"][0] == {"from": "human", "value": "Fix my python"}
    assert rows[0]["conversations"][1]["from"] == "gpt"

    german = tmp_path / "german.jsonl"
    _export("sft", "--database-url", url, "--out", german, "--language", "German")
    assert [r["question_id"] for r in _rows(german)] == [ids["german"]]

    everything = tmp_path / "all.jsonl"
    _export("sft", "--database-url", url, "--out", everything, "--keep-duplicates")
    assert ids["repeat"] in {r["question_id"] for r in _rows(everything)}


def test_preference_export_from_the_store(stocked, tmp_path):
    url, ids = stocked
    out = tmp_path / "prefs.jsonl"
    _export("preferences", "--database-url", url, "--out", out)
    rows = {r["question_id"]: r for r in _rows(out)}
    # anonymous votes for A or B only: no ties, named, flagged or unsampled battles
    assert set(rows) == {ids["english"], ids["german"], ids["code"]}
    german = rows[ids["german"]]
    assert german["prompt"] == [{"role": "user", "content": "Wie geht es dir?"}]
    assert german["chosen"] == [{"role": "assistant", "content": "answer b0"}]
    assert german["rejected"] == [{"role": "assistant", "content": "answer a0"}]
    assert (german["chosen_model"], german["rejected_model"]) == ("beta", "alpha")
    code = rows[ids["code"]]  # multi-turn: the prompt ends before the first answer
    assert [m["role"] for m in code["prompt"]] == ["user"]
    assert [m["role"] for m in code["chosen"]] == ["assistant", "user", "assistant"]
    assert rows[ids["english"]]["prompt"][0]["content"] == "Please write to <EMAIL> for me"

    ties = tmp_path / "ties.jsonl"
    _export("preferences", "--database-url", url, "--out", ties, "--keep-ties")
    winners = {r["question_id"]: r["winner"] for r in _rows(ties)}
    assert winners[ids["tie"]] == "tie" and winners[ids["bothbad"]] == "tie (bothbad)"


def test_exports_from_a_battles_file(stocked, tmp_path):
    url, ids = stocked
    battles = tmp_path / "battles.jsonl"
    _export("battles", "--database-url", url, "--out", battles)
    out = tmp_path / "sft.jsonl"
    _export("sft", "--battles", battles, "--out", out)
    assert {r["question_id"] for r in _rows(out)} == {
        ids[k] for k in ("english", "german", "tie", "code", "named")
    }
    assert EMAIL not in out.read_text()
    release = tmp_path / "release" / "conversations.parquet"
    _export("conversations", "--database-url", url, "--out", release, "--format", "parquet")
    prefs = tmp_path / "prefs.jsonl"
    _export("preferences", "--battles", release, "--out", prefs, "--category", "coding")
    assert [r["question_id"] for r in _rows(prefs)] == [ids["code"]]


def test_export_bad_inputs_are_clear_errors(tmp_path, sqlite_url):
    not_battles = tmp_path / "x.jsonl"
    not_battles.write_text('{"messages": []}\n')
    cases = [
        (["sft", "--battles", tmp_path / "missing.jsonl"], "no battles file"),
        (["sft", "--battles", not_battles], "not a battle row"),
        (["sft", "--battles", not_battles, "--category", "nonsense"], "unknown category"),
        (["preferences", "--database-url", sqlite_url], "no database file"),
        (["sft", "--battles", not_battles, "--phone-region", "XX"], "unknown region"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["export", *[str(a) for a in args], "--out", tmp_path / "o"])
        flat = " ".join(result.output.replace("│", " ").split())
        assert result.exit_code == 2 and message in flat, (args, result.output)
    assert not (tmp_path / "o").exists()


def test_the_export_half_needs_no_training_libraries():
    """`arena export sft` must work without the train extra: nothing it imports loads them."""
    code = (
        "import sys, arena.cli, arena.training.export_commands, arena.training.battle_rows, "
        "arena.training.training_records, arena.training.data_files;"
        "print(sorted(m for m in ('torch', 'trl', 'peft', 'accelerate', 'transformers') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
