"""The pipeline runner over a real store (SQLite and PostgreSQL): a first run tags every
battle with prompts, a second tags nothing, a version bump re-tags, a run killed mid-way
resumes where it stopped, a failing tagger or labeller leaves an ``error`` tag (retried next
run), labeller calls stay within the concurrency bound, dedup tags frequent prompts, the
run marks the published leaderboard stale, and the export carries the tags."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from arena.pipeline.runner import NO_LABELLER, run_pipeline
from arena.pipeline.taggers import CODING, DETERMINISTIC_TAGGERS, LANGUAGE
from arena.pipeline.tags import DeterministicTagger, LabellerTagger, Tag
from arena.store.battle_tags import iter_tag_values, tags_for_battles
from arena.store.db import Database
from arena.store.export import clean_battles
from arena.store.leaderboard_sets import mark_pipeline_changed, publish_set, published_head
from arena.store.models import utcnow
from arena.store.pipeline_tables import BattleTag, VoterFlag
from pipeline.pipeline_store import add_battle
from support.empty_store import empty_store

PROMPTS = [
    ["Write a Python function that reverses a string."],
    ["请用三句话介绍一下长城。"],
    ["What is a good name for a grey cat?", "And one for a black cat?"],
    ["Wie wird das Wetter morgen in Hamburg?"],
]


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with empty_store(database_url) as database:
        yield database


def _fill(db: Database, copies: int = 3) -> list[str]:
    return [add_battle(db, p) for _ in range(copies) for p in PROMPTS]


def _values(db: Database, name: str) -> dict[str, object]:
    return {b: v for b, v, _version, _status in iter_tag_values(db, name)}


def test_first_run_tags_everything_and_a_second_run_nothing(db: Database) -> None:
    ids = _fill(db)
    from arena.store.battles import create_battle

    create_battle(db, mode="battle", model_a="alpha", model_b="beta")  # no prompt: no tags
    report = run_pipeline(db, batch_size=5)
    assert {n: c.tagged for n, c in report.taggers.items()} == {
        t.name: len(ids) for t in DETERMINISTIC_TAGGERS
    }
    languages = _values(db, "language")
    assert set(languages) == set(ids)
    assert sorted(set(languages.values())) == ["Chinese", "English", "German"]
    code = _values(db, "is_code")
    assert sum(code.values()) == 3
    assert sum(_values(db, "multi_turn").values()) == 3
    assert report.dedup is not None and report.dedup.battles == len(ids)
    assert report.dedup.written == len(ids)

    again = run_pipeline(db, batch_size=5)
    assert all(c.tagged == 0 and c.up_to_date == len(ids) for c in again.taggers.values())
    assert again.dedup is not None and again.dedup.written == 0


def test_a_new_tagger_version_retags_only_that_tagger(db: Database) -> None:
    ids = _fill(db, copies=2)
    run_pipeline(db)
    bumped = dataclasses.replace(CODING, version="2")
    report = run_pipeline(db, taggers=[LANGUAGE, bumped], with_dedup=False)
    assert report.taggers["coding"].tagged == len(ids)
    assert report.taggers["language"].tagged == 0
    with db.session(read_only=True) as session:
        versions = set(
            session.scalars(select(BattleTag.version).where(BattleTag.name == "is_code"))
        )
    assert versions == {"2"}


class Killed(BaseException):
    """Stands for the process being killed: not an Exception, so nothing records it."""


def test_a_killed_run_resumes_where_it_stopped(db: Database) -> None:
    ids = sorted(_fill(db, copies=5))  # 20 battles, batches of 6
    victim = ids[8]  # in the second batch

    def dies(record):
        if record.battle_id == victim:
            raise Killed
        return LANGUAGE.run(record)

    crashing = DeterministicTagger("language", LANGUAGE.version, ("language",), dies)
    with pytest.raises(Killed):
        run_pipeline(db, taggers=[crashing], batch_size=6, with_dedup=False)
    assert set(_values(db, "language")) == set(ids[:6])  # the first batch was committed

    resumed = run_pipeline(db, taggers=[LANGUAGE], batch_size=6, with_dedup=False)
    assert resumed.taggers["language"].up_to_date == 6
    assert resumed.taggers["language"].tagged == len(ids) - 6
    assert set(_values(db, "language")) == set(ids)


def test_a_failing_tagger_leaves_an_error_tag_that_the_next_run_retries(db: Database) -> None:
    ids = _fill(db, copies=1)

    def flaky(record):
        if "Hamburg" in record.first_prompt:
            raise ValueError("cannot read this one")
        return CODING.run(record)

    broken = DeterministicTagger("coding", CODING.version, ("is_code",), flaky)
    report = run_pipeline(db, taggers=[broken], with_dedup=False)
    assert report.taggers["coding"].errors == 1 and report.taggers["coding"].tagged == len(ids)
    statuses = {s for _b, _v, _ver, s in iter_tag_values(db, "is_code")}
    assert statuses == {"ok", "error"}
    retried = run_pipeline(db, taggers=[CODING], with_dedup=False)
    assert retried.taggers["coding"].tagged == 1 and retried.taggers["coding"].errors == 0
    assert {s for _b, _v, _ver, s in iter_tag_values(db, "is_code")} == {"ok"}


def _math_labeller(in_flight: list[int], peak: list[int]) -> LabellerTagger:
    async def run(record, ask):
        answer = await ask(record.first_prompt)
        if answer == "fail":
            raise RuntimeError("labeller went away")
        if answer == "???":
            return [Tag("math_v0.1", None, "unparsable", "no verdict")]
        return [Tag("math_v0.1", {"math": answer == "yes"})]

    return LabellerTagger("math", "1", ("math_v0.1",), run)


def test_labellers_run_with_bounded_concurrency_and_record_failures(db: Database) -> None:
    ids = _fill(db, copies=5)
    in_flight, peak = [0], [0]

    async def ask(prompt: str) -> str:
        in_flight[0] += 1
        peak[0] = max(peak[0], in_flight[0])
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        in_flight[0] -= 1
        if "Hamburg" in prompt:
            return "fail"
        if "cat" in prompt:
            return "???"
        return "yes" if "Python" in prompt else "no"

    closed = []

    async def close() -> None:
        closed.append(True)

    labeller = _math_labeller(in_flight, peak)
    report = run_pipeline(
        db, labellers=[labeller], ask=ask, close_ask=close, concurrency=3, with_dedup=False
    )
    counts = report.taggers["math"]
    assert (counts.tagged, counts.errors, counts.unparsable) == (len(ids), 5, 5)
    assert 1 < peak[0] <= 3 and closed == [True]
    values = _values(db, "math_v0.1")
    assert sum(1 for v in values.values() if v == {"math": True}) == 5
    # Errors are retried; unparsable answers are kept.
    again = run_pipeline(db, labellers=[labeller], ask=ask, with_dedup=False)
    assert again.taggers["math"].tagged == 5 and again.taggers["math"].errors == 5


def test_without_a_labeller_the_report_says_what_was_skipped(db: Database) -> None:
    _fill(db, copies=1)
    labeller = _math_labeller([0], [0])
    report = run_pipeline(db, labellers=[labeller])
    assert report.skipped == {"math": NO_LABELLER}
    assert "math" not in report.taggers
    assert _values(db, "math_v0.1") == {}


def test_dedup_marks_a_flooding_prompt(db: Database) -> None:
    unique = [add_battle(db, [f"Question number {i} about birds?"]) for i in range(60)]
    flood = [add_battle(db, ["  HELLO there "]) for _ in range(8)]
    flood += [add_battle(db, ["hello THERE"]) for _ in range(4)]  # same after normalising
    report = run_pipeline(db)
    tags = _values(db, "dedup")
    assert all(tags[b] == {"high_freq": False, "sampled": True} for b in unique)
    assert all(tags[b]["high_freq"] for b in flood)
    kept = sum(tags[b]["sampled"] for b in flood)
    assert 1 <= kept < len(flood)
    assert report.dedup is not None and report.dedup.not_sampled == len(flood) - kept
    rows = {r["question_id"]: r for r in clean_battles(db)}
    assert sum(rows[b]["dedup_tag"]["sampled"] for b in flood) == kept


def test_a_run_that_changes_tags_marks_the_published_board_stale(db: Database) -> None:
    _fill(db, copies=1)
    head = published_head(db)
    publish_set(db, "s1", head.vote_watermark, b"zip", pipeline_stamp=head.pipeline_stamp)
    assert not published_head(db).stale
    run_pipeline(db)
    head = published_head(db)
    assert head.stale and head.pipeline_stamp
    publish_set(db, "s2", head.vote_watermark, b"zip", pipeline_stamp=head.pipeline_stamp)
    assert not published_head(db).stale
    run_pipeline(db)  # nothing new: the board stays current
    assert not published_head(db).stale
    mark_pipeline_changed(db)
    assert published_head(db).stale


def test_export_rows_carry_tags_and_leave_flagged_voters_out(db: Database) -> None:
    honest = [add_battle(db, p, ip_hash="honest") for p in PROMPTS]
    flagged = [add_battle(db, p, ip_hash="suspect") for p in PROMPTS]
    assert {r["language"] for r in clean_battles(db)} == {"unknown"}
    run_pipeline(db)
    with db.session() as session:
        session.add(
            VoterFlag(
                voter_kind="ip",
                voter_hash="suspect",
                votes=4,
                statistic=9.0,
                p_value=0.001,
                reason="test",
                screen_version="1",
                flagged_at=utcnow(),
            )
        )
    counts: dict[str, int] = {}
    rows = {r["question_id"]: r for r in clean_battles(db, counts=counts)}
    assert set(rows) == set(honest) and counts == {"flagged_excluded": len(flagged)}
    assert len(clean_battles(db, include_flagged=True)) == len(honest) + len(flagged)
    first = rows[honest[0]]
    assert first["language"] == "English" and first["is_code"] is True
    assert first["dedup_tag"] == {"high_freq": False, "sampled": True}
    assert first["category_tag"] is None
    tags = tags_for_battles(db, [honest[1]])
    assert tags[honest[1]]["language"] == rows[honest[1]]["language"] == "Chinese"


def test_llm_tags_reach_the_export_and_the_leaderboard_columns(db: Database, tmp_path) -> None:
    import polars as pl

    from arena.leaderboard.battle_table import load_battles, normalize_rows
    from arena.store.battle_tags import tag_rows, upsert_tags
    from arena.store.export import export_battles

    ids = [add_battle(db, p) for p in PROMPTS]
    run_pipeline(db)
    criteria = dict.fromkeys(
        [
            "specificity",
            "domain_knowledge",
            "complexity",
            "problem_solving",
            "creativity",
            "technical_accuracy",
            "real_world",
        ],
        True,
    )
    rows = tag_rows(
        ids[0],
        [
            Tag("criteria_v0.1", {**criteria, "hard": True}),
            Tag("if_v0.1", {"if": True, "score": 5}),
            Tag("math_v0.1", {"math": False}),
            Tag("creative_writing_v0.1", {"creative_writing": True}),
        ],
        tagger="llm",
        version="1",
    )
    rows += tag_rows(
        ids[1], [Tag("math_v0.1", None, "unparsable", "no verdict")], tagger="llm", version="1"
    )
    upsert_tags(db, rows)

    frame = normalize_rows(clean_battles(db))
    by_id = {r["question_id"]: r for r in frame.to_dicts()}
    first = by_id[ids[0]]
    assert first["is_hard"] and first["is_instruction_following"] and first["is_creative_writing"]
    assert not first["is_math"] and first["is_code"] and first["language"] == "English"
    assert not by_id[ids[1]]["is_math"]  # an unparsable verdict is no category

    out = tmp_path / "battles.parquet"
    assert export_battles(db, out, fmt="parquet") == len(ids)
    exported = pl.read_parquet(out)
    tagged = exported.filter(pl.col("question_id") == ids[0]).to_dicts()[0]
    assert tagged["category_tag"]["if_v0.1"] == {"if": True, "score": 5}
    assert tagged["dedup_tag"] == {"high_freq": False, "sampled": True}
    loaded = load_battles(out).frame
    assert loaded.filter(pl.col("is_hard")).height == 1
    assert sorted(set(loaded["language"].to_list())) == ["Chinese", "English", "German"]


def test_worker_processes_give_the_same_tags(database_url: str, tmp_path) -> None:
    def shout(record):  # a closure: cannot travel to a worker, so it runs here
        return [Tag("shout", record.first_prompt.upper())]

    local = DeterministicTagger("shout", "1", ("shout",), shout)
    taggers = [*DETERMINISTIC_TAGGERS, local]
    results = []
    for workers in (1, 2):
        url = database_url
        if url.startswith("sqlite"):  # a new file each time (PostgreSQL is emptied)
            url = f"sqlite:///{tmp_path / f'workers-{workers}.db'}"
        with empty_store(url) as db:
            _fill(db)
            report = run_pipeline(db, taggers=taggers, workers=workers, batch_size=5)
            assert all(c.tagged == 12 for c in report.taggers.values())
            by_prompt = {}
            with db.session(read_only=True) as session:
                for battle_id, name, value in session.execute(
                    select(BattleTag.battle_id, BattleTag.name, BattleTag.value)
                ):
                    by_prompt.setdefault(battle_id, {})[name] = value
            results.append(sorted(map(json_key, by_prompt.values())))
    assert results[0] == results[1]


def json_key(value: object) -> str:
    import json

    return json.dumps(value, sort_keys=True)
