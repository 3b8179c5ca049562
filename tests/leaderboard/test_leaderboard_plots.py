"""Plots: matrices line up with the board, the timeline refits, hostile names stay text."""

from __future__ import annotations

import numpy as np
import pytest

from arena.leaderboard.battle_table import normalize_rows
from arena.leaderboard.compute import RatingSettings, compute_leaderboard
from arena.leaderboard.filters import BattleFilters, select_battles
from arena.leaderboard.plots import compute_matrices, compute_timeline, write_plots

HOSTILE = "<script>alert(1)</script>$x$"


@pytest.fixture
def rated(make_rows):
    rows = make_rows(500)
    for row in rows:
        for side in ("model_a", "model_b"):
            if row[side] == "delta-tiny":
                row[side] = HOSTILE
    frame = select_battles(normalize_rows(rows), BattleFilters(), "full").frame
    settings = RatingSettings(ci="sandwich")
    board = compute_leaderboard(frame, category="full", style_control=False, settings=settings)
    return frame, board, settings


def test_matrices_follow_the_board_order(rated):
    frame, board, _ = rated
    mats = compute_matrices(frame, board)
    assert mats.models == tuple(m.model for m in board.models)
    i, j = 0, len(mats.models) - 1
    a, b = mats.models[i], mats.models[j]
    pair = frame.filter(
        ((frame["model_a"] == a) & (frame["model_b"] == b))
        | ((frame["model_a"] == b) & (frame["model_b"] == a))
    )
    assert mats.battle_count[i, j] == mats.battle_count[j, i] == pair.height
    wins = sum(
        1.0 if w == ("model_a" if ma == a else "model_b") else 0.5 if w.startswith("tie") else 0.0
        for ma, w in zip(pair["model_a"], pair["winner"], strict=True)
    )
    assert mats.win_fraction[i, j] == pytest.approx(wins / pair.height)
    assert mats.predicted[i, j] > 0.5 > mats.predicted[j, i]
    assert np.isnan(mats.predicted[i, i])


def test_timeline_is_cumulative(rated):
    frame, board, settings = rated
    line = compute_timeline(frame, board, settings, points=5)
    assert line is not None and len(line.times) == 5
    assert list(line.times) == sorted(line.times)
    final = {m.model: m.rating for m in board.models}
    for model, values in line.ratings.items():
        # The last cut-off includes every battle: the same fit as the board.
        assert values[-1] == pytest.approx(final[model], abs=1e-6)


def test_files_and_escaping(rated, tmp_path):
    frame, board, settings = rated
    files = write_plots(frame, board, tmp_path, settings=settings)
    assert {f.name for f in files} == {
        "ratings.png",
        "win_fraction.png",
        "battle_count.png",
        "predicted_win_rate.png",
        "ratings_over_time.png",
        "leaderboard_plots.html",
    }
    html = (tmp_path / "leaderboard_plots.html").read_text()
    assert "<script>alert(1)" not in html
    assert "\\u003cscript\\u003ealert(1)" in html
