"""``arena leaderboard`` end to end with typer's CliRunner, on generated and real battles."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from typer.testing import CliRunner

from arena.cli import app
from arena.leaderboard.artifacts import load_latest, read_parquet
from support.shared_data import SHARED_DATA

ARENA_HARD_BATTLES = str(SHARED_DATA / "arena_hard_v0.1/arena_hard_battles.jsonl")
ORDER = ["alpha-large", "beta-medium", "gamma-small", "delta-tiny"]


def run(*args: str):
    result = CliRunner().invoke(app, ["leaderboard", *args], catch_exceptions=False)
    return result


def run_json(*args: str) -> dict:
    result = run(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_json_output_from_each_input_format(fmt, battles_file):
    path = battles_file(fmt, n=600)
    data = run_json(str(path), "--rounds", "20", "--min-battles", "0")
    models = [m["model"] for m in data["models"]]
    assert set(models) == set(ORDER)
    assert models[0] == "alpha-large" and models[-1] == "delta-tiny"
    for m in data["models"]:
        assert m["ci_lower"] <= m["rating"] <= m["ci_upper"]
        assert m["rank_ub"] >= 1 and m["num_battles"] > 0
    meta = data["meta"]
    assert len(meta["snapshot"]) == 16 and len(meta["data_sha256"]) == 64
    assert meta["filters"]["anony_only"] is True
    assert meta["method"]["ci"] == "bootstrap"
    assert meta["method"]["rounds"] == 20 and meta["method"]["seed"] == 0
    assert meta["counts"]["input"] == 600
    assert meta["counts"]["battles_rated"] == meta["counts"]["category:full"] == 540
    assert sum(m["num_battles"] for m in data["models"]) == 2 * 540
    assert meta["created"] and meta["arena_version"]
    assert data["style_coefficients"] == {}


def test_same_input_and_seed_give_the_same_ratings(battles_file):
    path = battles_file("jsonl", n=300)
    first = run_json(str(path), "--rounds", "10", "--seed", "3")
    second = run_json(str(path), "--rounds", "10", "--seed", "3")
    assert first["models"] == second["models"]
    assert first["meta"]["snapshot"] == second["meta"]["snapshot"]
    other = run_json(str(path), "--rounds", "10", "--seed", "4")
    assert other["meta"]["snapshot"] != first["meta"]["snapshot"]


def test_text_formats_and_out_file(battles_file, tmp_path):
    path = str(battles_file("json", n=300))
    table = run(path, "--ci", "sandwich")
    assert table.exit_code == 0, table.output
    assert "alpha-large" in table.stdout and "Rank (UB)" in table.stdout
    out = tmp_path / "board.csv"
    result = run(path, "--ci", "sandwich", "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["model"] == "alpha-large" and len(rows) == 4
    md = run(path, "--ci", "sandwich", "--format", "markdown")
    assert md.stdout.startswith("### Overall") and "| alpha-large |" in md.stdout


def test_filters_category_anchor_and_style_control(battles_file):
    path = str(battles_file("jsonl", n=800))
    anchored = run_json(path, "--ci", "sandwich", "--anchor", "gamma-small=1500")
    by_name = {m["model"]: m["rating"] for m in anchored["models"]}
    assert by_name["gamma-small"] == pytest.approx(1500.0)

    filtered = run_json(
        path,
        "--ci",
        "sandwich",
        "--all-battles",
        "--exclude-ties",
        "--exclude-model",
        "delta-tiny",
        "--category",
        "multi_turn",
        "--since",
        "2023-11-15",
    )
    assert {m["model"] for m in filtered["models"]} == set(ORDER[:3])
    counts = filtered["meta"]["counts"]
    assert "anonymous" not in counts and counts["exclude_ties"] < counts["exclude_models"]
    assert filtered["meta"]["category"] == "multi_turn"

    styled = run_json(path, "--style-control", "--ci", "sandwich")
    assert styled["meta"]["style_control"] is True
    assert set(styled["style_coefficients"]) >= {"sum_assistant_tokens", "header_count"}
    assert {m["model"] for m in styled["models"]} == set(ORDER)


def test_artifacts_and_plots(battles_file, tmp_path):
    path = str(battles_file("parquet", n=600))
    artifacts, plots = tmp_path / "artifacts", tmp_path / "plots"
    result = run(
        path,
        "--rounds",
        "10",
        "--artifacts",
        str(artifacts),
        "--min-category-battles",
        "60",
        "--plots",
        str(plots),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    latest = load_latest(artifacts)
    assert latest.categories[0] == "full"
    assert {"hard_prompts", "math", "language:English", "language:German"} <= set(latest.categories)
    for category in latest.categories:
        assert latest.has(category, False) and latest.has(category, True)
    printed = json.loads(result.stdout)
    assert printed["meta"]["snapshot"] == latest.snapshot
    assert printed["models"] == [m.to_dict() for m in latest.get("full", False).models]
    entry = latest.entries[0]
    assert latest.snapshot in entry.json_file
    assert read_parquet(latest.directory / entry.parquet_file) == latest.get("full", False)
    assert latest.get("full", True).style_coefficients

    names = {p.name for p in plots.iterdir()}
    assert {
        "ratings.png",
        "win_fraction.png",
        "battle_count.png",
        "predicted_win_rate.png",
        "ratings_over_time.png",
        "leaderboard_plots.html",
    } <= names
    assert (plots / "ratings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (plots / "leaderboard_plots.html").read_text()
    # plotly.js is inlined (the bundle mentions its CDN only as a config default): no
    # script is loaded from anywhere.
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert len(html) > 1_000_000
    assert "Plotly.newPlot" in html and "alpha-large" in html


def test_arena_hard_battles_as_real_input():
    # arena-hard-auto data/arena_hard_battles.jsonl (Apache-2.0; /work/shared/data/SOURCES.md):
    # claude-3-haiku (always model_a) against four stronger models; model_b won 1,758 of
    # 2,136 judgments, so haiku must come last, below every opponent beyond doubt.
    data = run_json(
        ARENA_HARD_BATTLES, "--rounds", "50", "--anchor", "claude-3-haiku-20240307=1000"
    )
    models = {m["model"]: m for m in data["models"]}
    assert len(models) == 5
    haiku = models["claude-3-haiku-20240307"]
    assert haiku["rating"] == pytest.approx(1000.0)
    assert data["models"][-1]["model"] == "claude-3-haiku-20240307"
    assert haiku["num_battles"] == 2136 and haiku["wins"] == 347 and haiku["ties"] == 31
    assert all(m["ci_lower"] > haiku["ci_upper"] for n, m in models.items() if n != haiku["model"])
    assert haiku["rank_ub"] == 5
    assert data["meta"]["counts"]["battles_rated"] == 2136


def test_database_url_end_to_end(tmp_path, make_rows):
    from arena.store.battles import create_battle
    from arena.store.db import Database
    from arena.store.migrate import upgrade
    from arena.store.votes import record_vote

    url = f"sqlite:///{tmp_path / 'arena.db'}"
    upgrade(url)
    db = Database(url)
    votes = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "bothbad"}
    try:
        for row in make_rows(60):
            battle = create_battle(
                db, mode="battle", model_a=row["model_a"], model_b=row["model_b"]
            )
            record_vote(db, battle.id, votes[row["winner"]])
    finally:
        db.dispose()
    data = run_json(url, "--ci", "sandwich")
    assert data["meta"]["counts"]["input"] == 60
    assert {m["model"] for m in data["models"]} == set(ORDER)
    assert data["meta"]["source"].startswith("sqlite:///")


def test_errors_are_clear(tmp_path, battles_file):
    missing = run(str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "not found" in missing.stderr
    path = str(battles_file("jsonl", n=50))
    unknown = run(path, "--category", "poetry")
    assert unknown.exit_code == 2 and "unknown category" in unknown.stderr
    anchor = run(path, "--anchor", "no-equals-sign")
    assert anchor.exit_code == 2 and "MODEL=RATING" in anchor.output
    gone = run(
        path,
        "--exclude-model",
        "alpha-large",
        "--exclude-model",
        "beta-medium",
        "--exclude-model",
        "gamma-small",
    )
    assert gone.exit_code == 2 and "no battles left" in gone.stderr
