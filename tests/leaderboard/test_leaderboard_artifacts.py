"""Artifacts: JSON + Parquet round trip, snapshot folders, newest-first reading, rendering."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import time

import pytest

from arena.errors import NotFound
from arena.leaderboard.artifacts import (
    list_sets,
    load_latest,
    read_json,
    read_parquet,
    write_artifact_set,
)
from arena.leaderboard.refresher import ArtifactRefresher
from arena.leaderboard.render import render, to_csv, to_markdown
from arena.leaderboard.table import Leaderboard, ModelRow


def board(category="full", style=False, shift=0.0, names=("m-1", "m|2", "m<3>")) -> Leaderboard:
    rows = tuple(
        ModelRow(
            model=name,
            rating=1100.0 - 50 * i + shift,
            ci_lower=1090.0 - 50 * i + shift,
            ci_upper=1110.0 - 50 * i + shift,
            rank_ub=i + 1,
            num_battles=100 + i,
            wins=60 - i,
            losses=30 + i,
            ties=10 + i,
        )
        for i, name in enumerate(names)
    )
    coefs = {"sum_assistant_tokens": {"value": 0.25, "lower": 0.2, "upper": 0.3}} if style else {}
    return Leaderboard(category, style, rows, coefs, {"snapshot": "abc", "counts": {"input": 9}})


def test_json_and_parquet_round_trip(tmp_path):
    boards = [board(), board(style=True), board("language:Deutsch", shift=3.0)]
    written = write_artifact_set(tmp_path, boards, snapshot="snap1", meta={"source": "x"})
    assert written.directory.name == "snapshot-snap1"
    assert [(e.category, e.style_control) for e in written.entries] == [
        ("full", False),
        ("full", True),
        ("language:Deutsch", False),
    ]
    for original, entry in zip(boards, written.entries, strict=True):
        assert "snap1" in entry.json_file and "snap1" in entry.parquet_file
        assert read_json(written.directory / entry.json_file) == original
        assert read_parquet(written.directory / entry.parquet_file) == original
    assert not list(tmp_path.glob("**/*.pkl")) and not list(tmp_path.glob("**/*.pickle"))
    assert load_latest(tmp_path).get("full", True) == boards[1]
    assert load_latest(tmp_path).categories == ["full", "language:Deutsch"]


def test_latest_set_wins_and_old_sets_are_pruned(tmp_path):
    write_artifact_set(tmp_path, [board(shift=0.0)], snapshot="old")
    time.sleep(0.01)
    write_artifact_set(tmp_path, [board(shift=5.0)], snapshot="new", keep=2)
    latest = load_latest(tmp_path)
    assert latest.snapshot == "new"
    assert latest.get("full").models[0].rating == 1105.0
    time.sleep(0.01)
    write_artifact_set(tmp_path, [board(shift=9.0)], snapshot="newest", keep=2)
    assert [s.snapshot for s in list_sets(tmp_path)] == ["newest", "new"]
    # Same snapshot again replaces the set in place.
    write_artifact_set(tmp_path, [board(shift=1.0)], snapshot="newest", keep=2)
    assert load_latest(tmp_path).get("full").models[0].rating == 1101.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_incomplete_sets_are_ignored(tmp_path):
    with pytest.raises(NotFound):
        load_latest(tmp_path)
    (tmp_path / "snapshot-half").mkdir()
    (tmp_path / "snapshot-half" / "00-full.raw.half.json").write_text("{}")
    with pytest.raises(NotFound):
        load_latest(tmp_path)
    with pytest.raises(NotFound, match="available"):
        write_artifact_set(tmp_path, [board()], snapshot="ok").get("coding")


def test_render_formats():
    b = board(style=True)
    data = json.loads(render(b, "json"))
    assert set(data) >= {"models", "style_coefficients", "meta"}
    assert data["models"][0].keys() >= {
        "model",
        "rating",
        "ci_lower",
        "ci_upper",
        "rank_ub",
        "num_battles",
    }
    rows = list(csv.DictReader(io.StringIO(to_csv(b))))
    assert [r["model"] for r in rows] == ["m-1", "m|2", "m<3>"]
    assert float(rows[1]["win_rate"]) == pytest.approx((59 + 5.5) / 101)
    md = to_markdown(b)
    assert "| 2 | m\\|2 | 1050.0 | +10.0/-10.0 | 101 |" in md
    assert "sum_assistant_tokens" in md
    table = render(b, "table")
    assert "m<3>" in table and "1000.0" in table


def test_refresher_coalesces_and_survives_errors():
    calls = []

    def recompute():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("bad batch")
        return len(calls)

    refresher = ArtifactRefresher(recompute, min_interval_s=0.0)
    try:
        assert refresher.run_now() is None
        assert isinstance(refresher.last_error, RuntimeError)
        for _ in range(20):
            refresher.request()
        deadline = time.monotonic() + 60
        while refresher.runs < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert refresher.runs >= 1 and refresher.last_error is None
        assert len(calls) <= 3  # twenty requests coalesced into one or two runs
    finally:
        refresher.close()


def test_refresher_recomputes_in_a_child_process_and_outlives_its_death():
    # os.getpid pickles by name, so the child runs it and reports its own pid.
    # (A child killed in the middle of a run: tests/leaderboard/test_leaderboard_orphans.py.)
    refresher = ArtifactRefresher(os.getpid, in_child_process=True)
    try:
        child = refresher.run_now()
        assert child is not None and child != os.getpid()
        assert refresher.run_now() == child  # the child is kept between runs
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while refresher.child_pid is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refresher.child_pid is None, "the killed child was never seen to end"
        replacement = refresher.run_now()  # a child found dead is replaced before the run
        assert replacement not in (None, child, os.getpid())
        assert refresher.last_error is None
    finally:
        refresher.close()
    assert refresher.child_pid is None
