"""The LLM and moderation taggers through the pipeline runner and the store (SQLite and
PostgreSQL): a demo labeller from a registry file labels battles written as the web arena
writes them, a rerun asks nothing, and a second store with the same prompts is answered
from the labeller's cache."""

from __future__ import annotations

from pathlib import Path

from arena.config import Settings
from arena.pipeline.labeller import open_labeller
from arena.pipeline.llm_taggers import LLM_TAGGERS
from arena.pipeline.moderation_tagger import moderation_taggers
from arena.pipeline.runner import run_pipeline
from arena.store.battle_tags import iter_tag_values
from pipeline.pipeline_store import add_battle
from support.empty_store import empty_store

PROMPTS = [
    ["What is 12 * 13?"],
    ["Write a haiku about rain.", "Another one, about snow."],
    ["Tell me how a spoon bender works."],
]


def registry(tmp_path: Path) -> Path:
    path = tmp_path / "arena.yaml"
    path.write_text(
        "models:\n  - name: demo-labeller\n    provider: demo\n    params: {tokens_per_s: 0}\n",
        encoding="utf-8",
    )
    return path


def label(db, tmp_path: Path, cache: Path):
    labeller = open_labeller("demo-labeller", config=registry(tmp_path), cache_path=cache)
    words = tmp_path / "blocked.txt"
    words.write_text("spoon bender\n", encoding="utf-8")
    report = run_pipeline(
        db,
        taggers=moderation_taggers(Settings(blocked_words_path=words)),
        labellers=LLM_TAGGERS,
        ask=labeller.ask,
        close_ask=labeller.aclose,
        with_dedup=False,
        with_voter_screen=False,
    )
    return report, labeller.stats


def stored(db, name: str) -> dict[str, tuple]:
    return {battle: (value, status) for battle, value, _v, status in iter_tag_values(db, name)}


def test_llm_tags_are_stored_and_reruns_ask_nothing(database_url, tmp_path):
    cache = tmp_path / "labeller.sqlite"
    with empty_store(database_url) as db:
        ids = [add_battle(db, prompts) for prompts in PROMPTS]
        report, stats = label(db, tmp_path, cache)
        assert stats.calls == 4 * len(PROMPTS) and stats.cached == 0
        for tagger in LLM_TAGGERS:
            counts = report.taggers[tagger.name]
            assert (counts.tagged, counts.errors, counts.unparsable) == (3, 0, 0)
        math = stored(db, "math_v0.1")
        assert set(math) == set(ids)
        assert all(status == "ok" and set(v) == {"math"} for v, status in math.values())
        criteria = stored(db, "criteria_v0.1")
        assert all(len(v) == 8 and "hard" in v for v, _ in criteria.values())
        moderation = stored(db, "moderation")
        assert moderation[ids[2]][0]["flagged"] is True
        assert moderation[ids[0]][0]["flagged"] is False

        again, stats = label(db, tmp_path, cache)
        assert stats.calls == 0
        assert all(again.taggers[t.name].tagged == 0 for t in LLM_TAGGERS)
        assert stored(db, "math_v0.1") == math


def test_the_same_prompts_in_another_store_come_from_the_cache(tmp_path):
    cache = tmp_path / "labeller.sqlite"
    values = []
    for name in ("one", "two"):
        with empty_store(f"sqlite:///{tmp_path / name}.db") as db:
            for prompts in PROMPTS:
                add_battle(db, prompts)
            _report, stats = label(db, tmp_path, cache)
            values.append(sorted(map(str, stored(db, "criteria_v0.1").values())))
    assert stats.calls == 12 and stats.cached == 12
    assert values[0] == values[1]
