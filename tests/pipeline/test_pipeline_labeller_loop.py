"""The runner's labeller loop over a real store (SQLite and PostgreSQL): calls stay at the
concurrency bound from the first to the last across read pages, write batches and all four
LLM taggers (a labeller that answers only while every slot is busy would otherwise wait
forever); the labeller model is part of each LLM tag's version, so another model re-labels
and the same model asks nothing; and the ``arena pipeline run`` / ``arena export battles``
options of the voter screen."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arena.cli import app
from arena.pipeline.labeller import for_model, model_version
from arena.pipeline.llm_taggers import CRITERIA_ALIASES, LLM_TAGGERS
from arena.pipeline.runner import run_pipeline
from arena.store.battle_tags import iter_tag_values
from arena.store.db import Database
from arena.store.models import utcnow
from arena.store.pipeline_tables import VoterFlag
from pipeline.pipeline_store import add_battle
from support.empty_store import empty_store

ANSWER = json.dumps(
    {**dict.fromkeys(CRITERIA_ALIASES, True), "score": 4, "math": True, "creative_writing": False}
)
CONDITION_DEADLINE_S = 60.0  # generous: the condition holds as soon as the runner refills


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    with empty_store(database_url) as database:
        yield database


class SlotWatcher:
    """A stand-in labeller that answers one call at a time, oldest first, and only once
    ``concurrency`` calls wait (or every call left has begun): a runner that lets its calls
    drain between batches or taggers never gets its next answer."""

    def __init__(self, concurrency: int, total_calls: int) -> None:
        self.concurrency, self.total = concurrency, total_calls
        self.waiting: collections.deque[asyncio.Future[str]] = collections.deque()
        self.answered = 0
        self.peak = 0
        self.stalled: str | None = None
        self._controller: asyncio.Task | None = None

    async def ask(self, prompt: str) -> str:
        if self.stalled:
            return ANSWER  # the test has failed; let the run end so it can say so
        if self._controller is None:
            self._controller = asyncio.create_task(self._answer_all())
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.peak = max(self.peak, len(self.waiting))
        return await future

    async def _answer_all(self) -> None:
        loop = asyncio.get_running_loop()
        while self.answered < self.total:
            target = min(self.concurrency, self.total - self.answered)
            deadline = loop.time() + CONDITION_DEADLINE_S
            while len(self.waiting) < target:
                if loop.time() > deadline:
                    self.stalled = f"{len(self.waiting)} of {target} slots busy"
                    break
                await asyncio.sleep(0.001)  # poll the condition; the deadline only bounds it
            if self.stalled:
                while self.waiting:  # let the run finish so the test can report
                    self.waiting.popleft().set_result(ANSWER)
                return
            self.waiting.popleft().set_result(ANSWER)
            self.answered += 1


def test_calls_stay_at_the_bound_across_pages_batches_and_taggers(db) -> None:
    ids = [add_battle(db, [f"Question {i}: what is {i} squared?"]) for i in range(15)]
    concurrency = 4
    watcher = SlotWatcher(concurrency, total_calls=len(ids) * len(LLM_TAGGERS))
    report = run_pipeline(
        db,
        taggers=(),
        labellers=LLM_TAGGERS,
        ask=watcher.ask,
        concurrency=concurrency,
        batch_size=3,  # many write batches; read pages of 16 battles, the first of 8
        with_dedup=False,
        with_voter_screen=False,
    )
    assert watcher.stalled is None, watcher.stalled
    assert watcher.answered == len(ids) * len(LLM_TAGGERS)
    assert watcher.peak == concurrency
    for tagger in LLM_TAGGERS:
        counts = report.taggers[tagger.name]
        assert (counts.tagged, counts.up_to_date, counts.errors) == (len(ids), 0, 0)
        stored = {b: v for b, v, _ver, s in iter_tag_values(db, tagger.tag_names[0])}
        assert set(stored) == set(ids)
    assert all(v == {"math": True} for _b, v, _ver, _s in iter_tag_values(db, "math_v0.1"))


def _label(db: Database, model: str | None, calls: list[str]):
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        await asyncio.sleep(0)
        return ANSWER

    return run_pipeline(
        db,
        taggers=(),
        labellers=LLM_TAGGERS,
        ask=ask,
        labeller_model=model,
        with_dedup=False,
        with_voter_screen=False,
    )


def test_another_labeller_model_relabels_and_the_same_one_asks_nothing(db) -> None:
    ids = [add_battle(db, ["Write a poem about tea."]), add_battle(db, ["What is 7 * 8?"])]
    calls: list[str] = []
    _label(db, "model-one", calls)
    assert len(calls) == len(ids) * len(LLM_TAGGERS)
    first = {b: ver for b, _v, ver, _s in iter_tag_values(db, "criteria_v0.1")}
    assert set(first.values()) == {model_version(LLM_TAGGERS[0].version, "model-one")}

    calls.clear()
    again = _label(db, "model-one", calls)
    assert calls == [] and all(c.tagged == 0 for c in again.taggers.values())
    assert all(c.up_to_date == len(ids) for c in again.taggers.values())

    other = _label(db, "model-two", calls)
    assert len(calls) == len(ids) * len(LLM_TAGGERS)
    assert all(c.tagged == len(ids) for c in other.taggers.values())
    second = {b: ver for b, _v, ver, _s in iter_tag_values(db, "criteria_v0.1")}
    assert set(second) == set(ids) and set(second.values()).isdisjoint(first.values())


def test_model_versions_fit_the_column_and_keep_the_tagger_version() -> None:
    for tagger in for_model(LLM_TAGGERS, "a-registry-model"):
        base = next(t for t in LLM_TAGGERS if t.name == tagger.name)
        assert tagger.version.startswith(f"{base.version}-") and len(tagger.version) <= 32
    long = model_version("v" * 40, "x" * 200)
    assert len(long) == 32 and long != model_version("v" * 40, "y")
    assert model_version("1", "m") != model_version("1", "n")


runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_pipeline_run_relabels_when_the_labeller_changes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ARENA_DATA_DIR", str(tmp_path / "data"))  # the labeller's cache
    registry = tmp_path / "arena.yaml"
    registry.write_text(
        "models:\n"
        "  - name: demo-one\n    provider: demo\n    params: {tokens_per_s: 0}\n"
        "  - name: demo-two\n    provider: demo\n    params: {tokens_per_s: 0}\n",
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    with empty_store(url) as db:
        add_battle(db, ["What is 12 * 13?"])
        args = ["pipeline", "run", "--database-url", url, "--json", "--no-progress"]
        args += ["--config", str(registry), "--labeller"]

        def math_tagged(model: str) -> int:
            result = _invoke(*args, model)
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)["taggers"]["math"]["tagged"]

        assert math_tagged("demo-one") == 1
        assert math_tagged("demo-one") == 0
        assert math_tagged("demo-two") == 1
        versions = {ver for _b, _v, ver, _s in iter_tag_values(db, "math_v0.1")}
    assert versions == {model_version(LLM_TAGGERS[2].version, "demo-two")}


def test_pipeline_run_passes_the_screen_options_and_checks_them(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    with empty_store(url) as db:
        for i in range(12):
            add_battle(db, [f"Question {i}"], vote="a" if i % 3 else "b", ip_hash="voter-1")
    args = ["pipeline", "run", "--database-url", url, "--json", "--no-progress"]
    result = _invoke(*args, "--alpha", "0.05", "--min-votes", "5")
    assert result.exit_code == 0, result.output
    screen = json.loads(result.stdout)["voter_screen"]
    assert (screen["alpha"], screen["min_votes"], screen["tested_voters"]) == (0.05, 5, 1)
    default = json.loads(_invoke(*args).stdout)["voter_screen"]
    assert default["min_votes"] == 20 and default["skipped"] == "no voter has at least 20 votes"
    for bad, message in (
        (["--alpha", "0"], "--alpha"),
        (["--alpha", "1.5"], "--alpha"),
        (["--min-votes", "0"], "--min-votes"),
    ):
        refused = runner.invoke(app, [*args, *bad])
        assert refused.exit_code == 2 and message in refused.output, refused.output
        assert "Traceback" not in refused.output


def test_export_battles_keeps_flagged_voters_only_when_asked(db, database_url, tmp_path) -> None:
    for i in range(3):
        add_battle(db, [f"Honest question {i}"], ip_hash="honest")
        add_battle(db, [f"Suspect question {i}"], ip_hash="suspect")
    with db.session() as session:
        session.add(
            VoterFlag(
                voter_kind="ip", voter_hash="suspect", votes=3, statistic=9.0, p_value=1e-4,
                reason="test flag", screen_version="test", flagged_at=utcnow(),
            )
        )  # fmt: skip

    def exported(*extra: str) -> list[dict]:
        out = Path(tmp_path) / "battles.jsonl"
        result = _invoke(
            "export", "battles", "--database-url", database_url, "--out", str(out), *extra
        )
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]

    assert len(exported()) == 3
    assert len(exported("--include-flagged")) == 6
