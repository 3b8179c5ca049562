"""``arena leaderboard`` says what the battles cannot support, in every format.

Preliminary models, an unbounded side, a disconnected graph and only-tied models show up as
a mark in the table, CSV and Markdown, in the JSON, and as warnings on stderr; and the
method options (tie model, simultaneous intervals, reweighting, Elo, votes needed, style
normalisation) reach the result.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arena.cli import app


def run(*args: str, columns: int = 80):
    result = CliRunner().invoke(
        app, ["leaderboard", *args], catch_exceptions=False, env={"COLUMNS": str(columns)}
    )
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str) -> dict:
    return json.loads(run(*args, "--format", "json").stdout)


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def extra(a: str, b: str, winner: str, i: int) -> dict:
    return {"model_a": a, "model_b": b, "winner": winner, "tstamp": 1_800_000_000.0 + i}


@pytest.fixture
def uneven_file(tmp_path, make_rows) -> Path:
    """1,600 battles of four models, plus a newcomer that won its only 3 battles, a model
    with one tie, and a pair that only ever met each other."""
    rows = make_rows(1600, seed=3)
    rows += [extra("newcomer", "alpha-large", "model_a", i) for i in range(3)]
    rows += [extra("tied-once", "gamma-small", "tie", 10)]
    rows += [extra("island-a", "island-b", w, 20 + i) for i, w in enumerate(["model_a"] * 3)]
    rows += [extra("island-b", "island-a", "model_a", 30)]
    return write_jsonl(rows, tmp_path / "uneven.jsonl")


def test_preliminary_unbounded_and_parts_in_json(uneven_file):
    data = as_json(str(uneven_file), "--ci", "sandwich")
    rows = {r["model"]: r for r in data["models"]}
    order = [r["model"] for r in data["models"]]
    # Part 1 (largest) first, its ranked models before its preliminary ones.
    ranked = ["alpha-large", "beta-medium", "gamma-small", "delta-tiny"]
    assert order[:4] == ranked
    assert set(order[4:6]) == {"newcomer", "tied-once"}
    assert set(order[6:]) == {"island-a", "island-b"}
    assert all(rows[m]["rank_ub"] >= 1 and not rows[m]["preliminary"] for m in ranked)
    for m in ("newcomer", "tied-once", "island-a", "island-b"):
        assert rows[m]["preliminary"] is True and rows[m]["rank_ub"] is None
    assert {rows[m]["part"] for m in [*ranked, "newcomer", "tied-once"]} == {1}
    assert rows["island-a"]["part"] == rows["island-b"]["part"] == 2
    # Three straight wins: no upper bound, whatever a regularized fit would print.
    newcomer = rows["newcomer"]
    assert newcomer["ci_upper"] is None and newcomer["ci_lower"] is not None
    assert "never_lost" in newcomer["notes"]
    assert "all_ties" in rows["tied-once"]["notes"]
    tied = rows["tied-once"]
    assert tied["ci_upper"] - tied["ci_lower"] > 10 * (
        rows["gamma-small"]["ci_upper"] - rows["gamma-small"]["ci_lower"]
    )
    warnings = " ".join(data["meta"]["warnings"])
    assert "disconnected" in warnings and "preliminary" in warnings
    assert "never lost" in warnings and "only tied battles" in warnings
    assert data["meta"]["counts"]["parts"] == 2 and data["meta"]["counts"]["preliminary"] == 4


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "json"])
def test_every_format_warns_on_stderr_and_marks_rows(uneven_file, fmt):
    result = run(str(uneven_file), "--ci", "sandwich", "--format", fmt)
    assert "warning:" in result.stderr and "disconnected" in result.stderr
    assert "preliminary" in result.stderr
    out = result.stdout
    if fmt == "csv":
        rows = {r["model"]: r for r in csv.DictReader(io.StringIO(out))}
        assert rows["newcomer"]["preliminary"] == "True" and rows["newcomer"]["rank_ub"] == ""
        assert rows["newcomer"]["ci_upper"] == "inf" and rows["newcomer"]["notes"] == "never_lost"
        assert rows["island-a"]["part"] == "2"
    elif fmt == "markdown":
        line = next(x for x in out.splitlines() if "| newcomer |" in x)
        assert line.startswith("| prelim. |") and "+∞/" in line and "never lost" in line
        assert "> **Warning:**" in out and "| Part |" in out
    elif fmt == "table":
        line = next(x for x in out.splitlines() if "newcomer" in x)
        assert "prelim." in line and "∞" in line
        assert "Part" in out
    else:
        assert json.loads(out)["meta"]["warnings"]


def test_a_clean_board_has_no_marks_and_no_warnings(battles_file):
    result = run(str(battles_file("jsonl", n=1600)), "--ci", "sandwich", "--format", "markdown")
    assert "warning:" not in result.stderr
    assert "Part" not in result.stdout and "prelim." not in result.stdout


def test_min_battles_zero_ranks_everyone(uneven_file):
    data = as_json(str(uneven_file), "--ci", "sandwich", "--min-battles", "0")
    assert all(r["rank_ub"] is not None and not r["preliminary"] for r in data["models"])
    # Ranks count within each part: both parts have a rank 1.
    assert {r["part"] for r in data["models"] if r["rank_ub"] == 1} == {1, 2}


def test_ties_only_and_single_battle_files(tmp_path):
    ties = [extra(a, b, "tie", i) for i, (a, b) in enumerate([("p", "q"), ("q", "r"), ("p", "r")])]
    data = as_json(str(write_jsonl(ties, tmp_path / "t.jsonl")), "--ci", "sandwich")
    for row in data["models"]:
        assert row["rating"] == pytest.approx(1000.0)
        assert row["ci_upper"] - row["ci_lower"] > 600  # three ties say little
        assert row["notes"] == ["all_ties"]
    one = [extra("p", "q", "model_a", 0)]
    data = as_json(str(write_jsonl(one, tmp_path / "one.jsonl")))
    for row in data["models"]:
        assert row["ci_lower"] is None and row["ci_upper"] is None
        assert row["rank_ub"] is None


def test_method_options_reach_the_result(battles_file):
    path = str(battles_file("jsonl", n=1600))
    plain = as_json(path, "--ci", "sandwich")
    wide = as_json(path, "--ci", "sandwich", "--simultaneous", "bonferroni")
    for a, b in zip(plain["models"], wide["models"], strict=True):
        assert b["ci_upper"] - b["ci_lower"] > a["ci_upper"] - a["ci_lower"]
    assert wide["meta"]["method"]["simultaneous"] == "bonferroni"

    dav = as_json(path, "--ci", "sandwich", "--ties", "davidson", "--reweight", "ipw")
    assert dav["meta"]["method"]["model"] == "davidson"
    assert dav["meta"]["method"]["ties"] == "davidson"
    assert dav["meta"]["method"]["reweight"] == "ipw"
    assert [r["model"] for r in dav["models"]] == [r["model"] for r in plain["models"]]

    more = as_json(path, "--rounds", "20", "--elo", "--votes-needed", "20", "--min-battles", "0")
    for row in more["models"]:
        assert row["elo_lower"] <= row["elo"] <= row["elo_upper"]
        assert row["votes_needed"] >= 0
    elo_order = sorted(more["models"], key=lambda r: -r["elo"])
    assert elo_order[0]["model"] == "alpha-large" and elo_order[-1]["model"] == "delta-tiny"
    table = run(path, "--rounds", "20", "--elo", "--votes-needed", "20", columns=200).stdout
    assert "Elo" in table and "Votes needed" in table


def test_style_normalization_option(battles_file):
    path = str(battles_file("jsonl", n=1600))
    ref = as_json(path, "--style-control", "--ci", "sandwich")
    fc = as_json(path, "--style-control", "--ci", "sandwich", "--style-normalization", "fastchat")
    assert fc["meta"]["method"]["style_normalization"] == "fastchat"
    assert ref["meta"]["method"]["style_normalization"] == "reference"
    assert ref["style_coefficients"] != fc["style_coefficients"]


def test_artifacts_carry_observed_win_fractions_and_a_timeline(battles_file, tmp_path):
    from arena.leaderboard.artifacts import load_latest

    path = str(battles_file("jsonl", n=1600))
    run(path, "--ci", "sandwich", "--artifacts", str(tmp_path / "sets"))
    board = load_latest(tmp_path / "sets").get("full", False)
    names = board.uncertainty["models"]
    wins = board.uncertainty["win_fraction"]
    counts = board.uncertainty["battle_counts"]
    for i in range(len(names)):
        assert wins[i][i] is None
        for j in range(len(names)):
            if i != j and counts[i][j]:
                assert wins[i][j] + wins[j][i] == pytest.approx(1.0, abs=1e-3)
    strongest, weakest = names.index("alpha-large"), names.index("delta-tiny")
    assert wins[strongest][weakest] > 0.5
    timeline = board.meta["timeline"]
    assert len(timeline["times"]) >= 2
    final = timeline["ratings"]["alpha-large"][-1]
    assert final == pytest.approx(
        next(r.rating for r in board.models if r.model == "alpha-large"), abs=0.01
    )
