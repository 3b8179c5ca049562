"""The live leaderboard's categories follow the pipeline (SQLite and PostgreSQL): the shared
recompute publishes a set; a pipeline run that tags battles marks it stale; the next
recompute publishes a set whose category list (what the web page's selector shows) holds
the language categories that now have data, and a rerun that changes nothing leaves it."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from arena.leaderboard.artifacts import load_latest
from arena.leaderboard.compute import RatingSettings
from arena.leaderboard.shared import recompute_shared
from arena.pipeline.runner import run_pipeline
from arena.store.db import Database
from arena.store.leaderboard_sets import published_head
from pipeline.pipeline_store import add_battle
from support.empty_store import empty_store

SETTINGS = RatingSettings(rounds=5, min_battles=0)
PROMPTS = ["请推荐几本好看的小说。", "Recommend a few good novels to read."]


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[Database, str]]:
    with empty_store(database_url) as db:
        yield db, database_url


def test_categories_refresh_after_a_pipeline_run(store, tmp_path) -> None:
    db, url = store
    rng = random.Random(3)
    for i in range(80):
        a, b = rng.sample(["m1", "m2", "m3"], 2)
        add_battle(db, [f"{PROMPTS[i % 2]} {i}"], model_a=a, model_b=b, vote=rng.choice("ab"))
    artifacts = tmp_path / "leaderboard"

    assert recompute_shared(url, artifacts, owner="test", settings=SETTINGS) is not None
    before = load_latest(artifacts).categories
    assert "full" in before and not any(c.startswith("language:") for c in before)
    assert recompute_shared(url, artifacts, owner="test", settings=SETTINGS) is None  # current

    run_pipeline(db)
    assert published_head(db).stale
    assert recompute_shared(url, artifacts, owner="test", settings=SETTINGS) is not None
    after = load_latest(artifacts).categories
    assert {"language:Chinese", "language:English"} <= set(after)

    run_pipeline(db)  # nothing new to tag: no recompute needed
    assert not published_head(db).stale
