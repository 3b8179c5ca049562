"""``arena pipeline`` end to end: ``eval-tags`` on the real MT-Bench and Arena-Hard questions
(and Vicuna-80's, a set the coding heuristic was not tuned on), bad input, and the
leaderboard on Arena's own votes: battles stored through the store API → ``arena pipeline
run`` → ``arena leaderboard DBURL`` by category, by language and with ``--dedup`` (SQLite
and PostgreSQL), flagged voters left out unless ``--include-flagged``.

Sources: MT-Bench questions (FastChat llm_judge data, Apache-2.0); Arena-Hard v0.1 prompts
(arena-hard-auto, Apache-2.0); Vicuna-80 questions (PRD data, MIT) — see shared/data/SOURCES.md.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arena.cli import app
from arena.store.db import Database
from arena.store.models import utcnow
from arena.store.pipeline_tables import VoterFlag
from pipeline.pipeline_store import add_battle
from support.empty_store import empty_store
from support.shared_data import SHARED_DATA

MT_BENCH = SHARED_DATA / "mt_bench" / "question.jsonl"
ARENA_HARD = SHARED_DATA / "arena_hard_v0.1" / "question.jsonl"
VICUNA = SHARED_DATA / "vicuna80" / "vicuna_questions.jsonl"
# Measured (coding heuristic v1): MT-Bench coding precision 1.0 and recall 1.0 (10 of 10,
# no false positive among 70); Vicuna-80 (held out) precision 0.875 (7 of 8) and recall 1.0
# (7 of 7). The bounds leave a little room for later tuning.
MT_BENCH_MIN = 0.9
VICUNA_MIN_PRECISION, VICUNA_MIN_RECALL = 0.8, 0.85

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_eval_tags_on_mt_bench_and_arena_hard() -> None:
    result = _invoke(
        "pipeline", "eval-tags", "--mt-bench", str(MT_BENCH), "--arena-hard", str(ARENA_HARD),
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mt, hard = json.loads(result.stdout)
    assert mt["prompts"] == 80 and hard["prompts"] == 500
    coding = mt["metrics"]["coding"]
    assert coding["support"] == 10 and coding["total"] == 80
    assert coding["precision"] >= MT_BENCH_MIN and coding["recall"] >= MT_BENCH_MIN
    assert sorted(mt["not_scored"]) == ["creative_writing", "math"]  # need a labeller
    assert hard["not_scored"] == ["hard"] and hard["metrics"] == {}


def test_eval_tags_on_a_labelled_file_held_out(tmp_path: Path) -> None:
    labelled = tmp_path / "vicuna.jsonl"
    with labelled.open("w", encoding="utf-8") as out:
        for line in VICUNA.read_text(encoding="utf-8").splitlines():
            q = json.loads(line)
            row = {"prompt": q["text"], "labels": {"coding": q["category"] == "coding"}}
            out.write(json.dumps(row) + "\n")
    result = _invoke("pipeline", "eval-tags", str(labelled), "--json")
    assert result.exit_code == 0, result.output
    coding = json.loads(result.stdout)[0]["metrics"]["coding"]
    assert coding["total"] == 80 and coding["support"] == 7
    assert coding["precision"] >= VICUNA_MIN_PRECISION
    assert coding["recall"] >= VICUNA_MIN_RECALL
    table = _invoke("pipeline", "eval-tags", str(labelled))
    assert table.exit_code == 0 and "coding" in table.stdout and "precision" in table.stdout


def test_eval_tags_refuses_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "hi", "labels": {"coding": false}}\n{"prompt": 1\n')
    result = _invoke("pipeline", "eval-tags", str(bad))
    assert result.exit_code == 2 and "bad.jsonl:2: not JSON" in result.stderr
    bad.write_text('{"prompt": "hi", "labels": {"coding": "yes"}}\n')
    result = _invoke("pipeline", "eval-tags", str(bad))
    assert result.exit_code == 2 and "true/false" in result.stderr
    assert _invoke("pipeline", "eval-tags").exit_code == 2
    missing = _invoke("pipeline", "eval-tags", "--mt-bench", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_eval_tags_scores_only_the_chosen_taggers_on_the_first_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARENA_DATA_DIR", str(tmp_path))  # the labeller's answer cache
    registry = tmp_path / "models.yaml"
    registry.write_text(
        "models:\n  - name: demo-labeller\n    provider: demo\n    params: {tokens_per_s: 0}\n"
    )
    common = ("pipeline", "eval-tags", "--mt-bench", str(MT_BENCH), "--config", str(registry))
    result = _invoke(
        *common, "--labeller", "demo-labeller", "--tagger", "math", "--limit", "7", "--json"
    )
    assert result.exit_code == 0, result.output
    (mt,) = json.loads(result.stdout)
    assert mt["prompts"] == 7
    assert mt["metrics"]["math"]["total"] == 7
    assert "creative_writing" not in mt["metrics"] and mt["not_scored"] == ["creative_writing"]
    unknown = _invoke(*common, "--labeller", "demo-labeller", "--tagger", "poetry")
    assert unknown.exit_code == 2 and "unknown tagger poetry" in unknown.stderr
    assert "hard_prompt" in unknown.stderr
    alone = _invoke(*common, "--tagger", "math")
    assert alone.exit_code == 2 and "--tagger needs --labeller" in alone.output


def test_pipeline_run_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'absent.db'}"
    result = _invoke("pipeline", "run", "--database-url", url)
    assert result.exit_code == 2 and "no database at" in result.stderr
    assert not (tmp_path / "absent.db").exists()


MODELS = ("model-strong", "model-middle", "model-weak")
PROMPT_KINDS = [
    ["Write a Python function that checks whether a number is prime."],
    ["How do I fix a segmentation fault in my C++ program?\n```cpp\nint* p = nullptr;\n```"],
    ["请介绍一下北京的历史和文化。"],
    ["上海有哪些好吃的小吃？"],
    ["Plan a weekend in the mountains.", "Now make it cheaper."],
    ["What are good books about the history of science?"],
]


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[Database, str]]:
    with empty_store(database_url) as db:
        yield db, database_url


def _fill(db: Database) -> None:
    """Votes from a few voters that favour the stronger model, on every kind of prompt, plus
    a prompt asked over and over (for dedup)."""
    rng = random.Random(7)
    for i in range(150):
        a, b = rng.sample(MODELS, 2)
        vote = "a" if MODELS.index(a) < MODELS.index(b) else "b"
        if rng.random() < 0.25:
            vote = rng.choice(["a", "b", "tie"])
        prompts = PROMPT_KINDS[i % len(PROMPT_KINDS)]
        prompts = [f"{prompts[0]} (#{i})", *prompts[1:]]  # distinct prompts...
        add_battle(db, prompts, model_a=a, model_b=b, vote=vote, ip_hash=f"voter-{i % 5}")
    for i in range(40):  # ...and one asked 40 times
        a, b = rng.sample(MODELS, 2)
        add_battle(db, ["hi"], model_a=a, model_b=b, vote="a", ip_hash=f"voter-{i % 5}")


def _board(url: str, *args: str) -> dict:
    result = _invoke(
        "leaderboard", url, "--min-battles", "0", "--rounds", "5", "--format", "json", *args
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_leaderboard_on_its_own_data_after_a_pipeline_run(store) -> None:
    db, url = store
    _fill(db)
    before = _invoke("leaderboard", url, "--category", "language:Chinese", "--min-battles", "0")
    assert before.exit_code == 2  # every language "unknown" before the pipeline has run

    result = _invoke("pipeline", "run", "--database-url", url, "--json", "--no-progress")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["taggers"]["language"]["tagged"] == 190
    assert report["dedup"]["high_freq"] == 40 and report["dedup"]["not_sampled"] > 0
    assert all(why.startswith("no labeller") for why in report["skipped"].values())

    full = _board(url)
    assert {m["model"] for m in full["models"]} == set(MODELS)
    for category, battles in (
        ("coding", 50),
        ("language:Chinese", 50),
        ("multi_turn", 25),
    ):
        board = _board(url, "--category", category)
        assert {m["model"] for m in board["models"]} == set(MODELS), category
        assert board["meta"]["counts"]["battles_rated"] == battles, category
    dedup = _board(url, "--dedup")
    assert dedup["meta"]["counts"]["battles_rated"] < full["meta"]["counts"]["battles_rated"]
    assert (
        full["meta"]["counts"]["battles_rated"] - dedup["meta"]["counts"]["battles_rated"]
        == report["dedup"]["not_sampled"]
    )

    again = _invoke("pipeline", "run", "--database-url", url, "--json", "--no-progress")
    assert json.loads(again.stdout)["taggers"]["language"]["tagged"] == 0

    table = _invoke("pipeline", "run", "--database-url", url, "--no-progress")
    assert table.exit_code == 0 and "up to date" in table.stdout and "skipped" in table.stdout


def test_flagged_voters_leave_the_board_unless_included(store) -> None:
    db, url = store
    _fill(db)
    with db.session() as session:
        session.add(
            VoterFlag(
                voter_kind="ip", voter_hash="voter-0", votes=38, statistic=12.0, p_value=1e-4,
                reason="test flag", screen_version="test", flagged_at=utcnow(),
            )
        )  # fmt: skip
    result = runner.invoke(
        app, ["leaderboard", url, "--min-battles", "0", "--rounds", "5", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "left out 38 votes of flagged voters" in result.stderr
    kept = json.loads(result.stdout)["meta"]["counts"]["battles_rated"]
    included = _board(url, "--include-flagged")
    assert included["meta"]["counts"]["battles_rated"] == kept + 38


def test_pipeline_run_uses_the_configured_moderation_word_list(tmp_path, monkeypatch) -> None:
    from arena.store.battle_tags import iter_tag_values

    words = tmp_path / "blocked.txt"
    words.write_text("forbidden phrase\n", encoding="utf-8")
    monkeypatch.setenv("ARENA_BLOCKED_WORDS_PATH", str(words))
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    with empty_store(url) as db:
        bad = add_battle(db, ["Tell me the forbidden phrase please."])
        good = add_battle(db, ["Tell me a joke."])
        result = _invoke("pipeline", "run", "--database-url", url, "--json", "--no-progress")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["taggers"]["moderation"]["tagged"] == 2
        flagged = {b: v["flagged"] for b, v, _ver, _s in iter_tag_values(db, "moderation")}
    assert flagged == {bad: True, good: False}


def test_pipeline_run_with_a_labeller_from_a_registry(tmp_path, monkeypatch) -> None:
    from arena.store.battle_tags import iter_tag_values

    monkeypatch.setenv("ARENA_DATA_DIR", str(tmp_path / "data"))  # the labeller's cache
    registry = tmp_path / "arena.yaml"
    registry.write_text(
        "models:\n  - name: demo-labeller\n    provider: demo\n    params: {tokens_per_s: 0}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    with empty_store(url) as db:
        ids = [add_battle(db, ["What is 12 * 13?"]), add_battle(db, ["Write a haiku."])]
        args = ["pipeline", "run", "--database-url", url, "--json", "--no-progress"]
        result = _invoke(*args, "--labeller", "demo-labeller", "--config", str(registry))
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["skipped"] == {}
        for name in ("hard_prompt", "instruction_following", "math", "creative_writing"):
            assert report["taggers"][name]["tagged"] == len(ids), name
        stored = {b for b, _v, _ver, _s in iter_tag_values(db, "math_v0.1")}
        assert stored == set(ids)
    unknown = _invoke(*args, "--labeller", "no-such-model", "--config", str(registry))
    assert unknown.exit_code == 2


def test_pipeline_run_tags_a_clean_battle_file(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    with empty_store(url) as db:
        _fill(db)
    exported = tmp_path / "battles.jsonl"
    result = _invoke("export", "battles", "--database-url", url, "--out", str(exported))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert {r["language"] for r in rows} == {"unknown"}
    as_array = tmp_path / "battles.json"
    as_array.write_text(json.dumps(rows), encoding="utf-8")

    tagged = tmp_path / "tagged.jsonl"
    result = _invoke(
        "pipeline", "run", "--input", str(exported), "--out", str(tagged), "--json"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["taggers"]["language"]["tagged"] == len(rows) == 190
    assert report["dedup"]["high_freq"] == 40
    out_rows = [json.loads(line) for line in tagged.read_text(encoding="utf-8").splitlines()]
    assert [r["question_id"] for r in out_rows] == [r["question_id"] for r in rows]
    assert {r["language"] for r in out_rows} >= {"English", "Chinese"}

    chinese = _board(str(tagged), "--category", "language:Chinese")
    assert chinese["meta"]["counts"]["battles_rated"] == 50
    full = _board(str(tagged))
    dedup = _board(str(tagged), "--dedup")
    not_sampled = report["dedup"]["not_sampled"]
    assert full["meta"]["counts"]["battles_rated"] - dedup["meta"]["counts"]["battles_rated"] == (
        not_sampled
    )

    parquet = tmp_path / "tagged.parquet"
    result = _invoke("pipeline", "run", "--input", str(as_array), "--out", str(parquet))
    assert result.exit_code == 0, result.output
    assert _board(str(parquet), "--category", "coding")["meta"]["counts"]["battles_rated"] == 50


def test_pipeline_run_file_options_are_checked(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"model_a": "x"}\nnot json\n', encoding="utf-8")
    out = str(tmp_path / "out.jsonl")
    result = _invoke("pipeline", "run", "--input", str(bad), "--out", out)
    assert result.exit_code == 2 and "bad.jsonl:2: not JSON" in result.stderr
    assert _invoke("pipeline", "run", "--input", str(bad)).exit_code == 2
    missing = _invoke("pipeline", "run", "--input", str(tmp_path / "nope.json"), "--out", out)
    assert missing.exit_code == 2 and "no such file" in missing.stderr
