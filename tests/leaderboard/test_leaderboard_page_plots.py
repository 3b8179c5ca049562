"""The leaderboard page's charts (server-rendered SVG), brand, empty state, favicon and
LLM-judge columns: well-formed SVG with known content, shown in Chromium without errors at
desktop and phone sizes, and judge columns only when a report scores a model of the board."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from arena.config import Settings
from arena.leaderboard.artifacts import write_artifact_set
from arena.leaderboard.table import Leaderboard, ModelRow
from arena.web.leaderboard_page import leaderboard_router
from support.browser import launch_chromium
from support.servers import serve_app

INF = math.inf
SVG = "{http://www.w3.org/2000/svg}"
MODELS = ["alpha-large", "beta-medium", "gamma-small", "delta-tiny"]
COUNTS = [[0, 120, 0, 10], [120, 0, 0, 20], [0, 0, 0, 0], [10, 20, 0, 0]]
SOURCE = {"source": "battles.jsonl", "filters": {"anony": True}}
METHOD = {"model": "bradley_terry", "scale": 400.0, "ties": "half", "confidence": 0.95}


def row(model: str, rating: float, low: float, high: float, rank: int | None, **extra) -> ModelRow:
    battles = extra.pop("num_battles", 900)
    return ModelRow(model, rating, low, high, rank, battles, battles // 2, battles // 3, 1, **extra)


def board(
    *,
    alpha: float = 1200.0,
    battles: int = 1500,
    style: bool = False,
    method: dict | None = None,
    win_fraction: list | None = None,
    timeline: dict | None = None,
) -> Leaderboard:
    """Two parts, an unbounded side in each, a preliminary model; counts per pair."""
    models = (
        row("alpha-large", alpha, alpha - 20, INF, 1, notes=("never_lost",)),
        row("beta-medium", 1100.0, 1080.0, 1120.0, 2),
        row("gamma-small", 1000.0, -INF, 1050.0, 1, part=2, notes=("never_won",)),
        row("delta-tiny", 1300.0, 1150.0, 1450.0, None, num_battles=40, preliminary=True),
    )
    meta = {"method": method or METHOD, "counts": {"battles_rated": battles}}
    if timeline is not None:
        meta["timeline"] = timeline
    uncertainty = None
    if not style:
        uncertainty = {"models": MODELS, "covariance": [], "battle_counts": COUNTS}
        if win_fraction is not None:
            uncertainty["win_fraction"] = win_fraction
    return Leaderboard("full", style, models, {}, meta, uncertainty=uncertainty)


def charts(html: str) -> dict[str, ET.Element]:
    """Every inline SVG of the page, parsed (a malformed one fails here)."""
    found = {}
    for text in re.findall(r"<svg\b.*?</svg>", html, flags=re.S):
        svg = ET.fromstring(text)
        found[svg.get("id")] = svg
    return found


def titles(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}title")]


def classed(svg: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in svg.iter() if name in (e.get("class") or "").split()]


def serve_folder(folder: Path, **options):
    app = FastAPI()
    app.include_router(leaderboard_router(folder, **options))
    return serve_app(app)


def test_charts_are_accessible_svg_with_the_boards_numbers(tmp_path):
    folder = tmp_path / "artifacts"
    write_artifact_set(folder, [board(), board(style=True)], snapshot="p1", meta=SOURCE)
    with serve_folder(folder) as base, httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/leaderboard")
        style = client.get("/leaderboard/plots", params={"style_control": "true"})
        filtered = client.get("/leaderboard/plots", params={"min_votes": 100})
    assert page.status_code == 200
    found = charts(page.text)
    # One computation only: no history yet, and the page says so.
    assert set(found) == {"lb-chart-intervals", "lb-chart-win-fraction", "lb-chart-battle-counts"}
    assert "Not enough history yet" in page.text
    for chart_id, svg in found.items():
        assert svg.get("role") == "img" and svg.get("viewBox")
        title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
        assert title is not None and desc is not None and desc.text
        assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
        assert title.get("id") == f"{chart_id}-title"
        assert "style=" not in ET.tostring(svg, encoding="unicode")  # CSP: no inline style

    intervals = found["lb-chart-intervals"]
    assert title_text(intervals) == "Ratings with 95% intervals"
    rows = classed(intervals, "lb-row")
    assert len(rows) == 4
    # Ranked models first; the preliminary one last, dashed, with a hollow dot.
    assert [titles(r)[0].split(":")[0] for r in rows] == [
        "alpha-large",
        "beta-medium",
        "gamma-small",
        "delta-tiny",
    ]
    assert titles(rows[0])[0] == "alpha-large: 1200.0 (1180.0 to ∞), rank 1"
    assert titles(rows[2])[0] == "gamma-small: 1000.0 (−∞ to 1050.0), rank 1"
    assert len(classed(intervals, "lb-row-prelim")) == 1
    assert len(classed(intervals, "lb-dot-prelim")) == 1
    assert classed(rows[3], "lb-interval")[0].get("stroke-dasharray") == "4 3"
    # One open arrow per unbounded side: alpha's upper, gamma's lower.
    assert len(classed(intervals, "lb-open")) == 2
    assert "alpha-large 1200.0 (1180.0 to unbounded)" in intervals.find(f"{SVG}desc").text

    # No observed fractions stored: predicted win rates, titled so, blank across parts.
    wins = found["lb-chart-win-fraction"]
    assert title_text(wins) == "Predicted win rate (row against column)"
    cells = titles(wins)
    assert "alpha-large against beta-medium: 64%" in cells  # 1 / (1 + 10^(-100/400))
    assert "beta-medium against alpha-large: 36%" in cells
    assert "delta-tiny against alpha-large: 64%" in cells
    assert not [c for c in cells if "gamma-small against" in c or "against gamma-small" in c]
    assert "no observed win fractions" in page.text

    counts = found["lb-chart-battle-counts"]
    cells = titles(counts)
    assert "alpha-large and beta-medium: 120 battles" in cells
    assert "beta-medium and delta-tiny: 20 battles" in cells
    assert len([c for c in cells if c.endswith(" battles")]) == 6  # 3 pairs, both ways

    # The style-controlled board borrows the category's counts and says so.
    style_charts = charts(style.text)
    assert "alpha-large and beta-medium: 120 battles" in titles(
        style_charts["lb-chart-battle-counts"]
    )
    assert "Counted on every battle of this category" in style.text
    assert style.headers["content-security-policy"]

    # The fragment follows the filters: 100 votes leaves out the preliminary model.
    assert len(classed(charts(filtered.text)["lb-chart-intervals"], "lb-row")) == 3


def title_text(svg: ET.Element) -> str:
    return svg.find(f"{SVG}title").text or ""


def test_observed_win_fractions_are_drawn_when_the_artifacts_hold_them(tmp_path):
    fractions = [
        [None, 0.7, None, 0.4],
        [0.3, None, None, 0.55],
        [None] * 4,
        [0.6, 0.45, None, None],
    ]
    folder = tmp_path / "artifacts"
    write_artifact_set(folder, [board(win_fraction=fractions)], snapshot="o1", meta=SOURCE)
    with serve_folder(folder) as base:
        html = httpx.get(f"{base}/leaderboard", timeout=10).text
    wins = charts(html)["lb-chart-win-fraction"]
    assert title_text(wins) == "Observed win fraction (row against column)"
    cells = titles(wins)
    assert "alpha-large against beta-medium: 70%" in cells
    assert "delta-tiny against beta-medium: 45%" in cells
    assert "predicted" not in html.split('id="lb-figure-win-fraction"')[1][:600].lower()


def test_ratings_over_time_from_earlier_artifact_sets(tmp_path):
    folder = tmp_path / "artifacts"
    for snapshot, alpha, battles in (("h1", 1150.0, 500), ("h2", 1180.0, 800)):
        boards = [board(alpha=alpha, battles=battles)]
        write_artifact_set(folder, boards, snapshot=snapshot, meta=SOURCE)
    # Rated another way, or from another source: not part of this board's history.
    other = {**METHOD, "ties": "davidson"}
    write_artifact_set(folder, [board(battles=900, method=other)], snapshot="x1", meta=SOURCE)
    write_artifact_set(folder, [board(battles=950)], snapshot="x2", meta={**SOURCE, "source": "o"})
    write_artifact_set(folder, [board(alpha=1200.0, battles=1200)], snapshot="h3", meta=SOURCE)
    with serve_folder(folder) as base:
        html = httpx.get(f"{base}/leaderboard", timeout=10).text
    history = charts(html)["lb-chart-history"]
    points = [t for t in titles(history) if t.startswith("alpha-large:")]
    assert points == [
        "alpha-large: 1150.0 at 500",
        "alpha-large: 1180.0 at 800",
        "alpha-large: 1200.0 at 1.2k",
    ]
    series = classed(history, "lb-series")
    # Ranked models only (the preliminary one is left out), one line each.
    assert [titles(s)[0] for s in series] == ["alpha-large", "beta-medium", "gamma-small"]
    assert all(len(s.findall(f"{SVG}circle")) == 3 for s in series)


def test_ratings_over_time_by_month_when_the_board_carries_a_timeline(tmp_path):
    timeline = {
        "times": ["2024-01-31T00:00:00+00:00", "2024-02-29T00:00:00+00:00", "2024-03-31"],
        "ratings": {"alpha-large": [1150.0, 1170.0, 1200.0], "beta-medium": [None, 1090, 1100]},
    }
    folder = tmp_path / "artifacts"
    write_artifact_set(folder, [board(timeline=timeline)], snapshot="t1", meta=SOURCE)
    with serve_folder(folder) as base:
        html = httpx.get(f"{base}/leaderboard", timeout=10).text
    history = charts(html)["lb-chart-history"]
    assert "alpha-large: 1150.0 at 2024-01" in titles(history)
    assert "beta-medium: 1100.0 at 2024-03" in titles(history)
    series = {titles(s)[0]: s for s in classed(history, "lb-series")}
    assert set(series) == {"alpha-large", "beta-medium"}
    assert len(series["beta-medium"].findall(f"{SVG}circle")) == 2  # no rating in January


def test_empty_state_says_what_makes_a_leaderboard_appear(tmp_path):
    with serve_folder(tmp_path / "none") as base:
        page = httpx.get(f"{base}/leaderboard", timeout=10)
    assert page.status_code == 200
    assert '<h2 id="lb-empty-title">No leaderboard yet</h2>' in page.text
    assert "vote in the arena" in page.text
    assert "<code>arena leaderboard BATTLES --artifacts DIR</code>" in page.text
    assert 'class="brand"' in page.text and ">Arena<" in page.text
    assert "<svg" not in page.text and 'id="lb-plots"' not in page.text


def favicon_href(html: str) -> str:
    match = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)">', html)
    assert match, "no SVG favicon link"
    return match.group(1)


def assert_favicon(client: httpx.Client, href: str) -> None:
    icon = client.get(href)
    assert icon.status_code == 200, href
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert "max-age=31536000" in icon.headers["cache-control"]
    assert ET.fromstring(icon.text).tag == f"{SVG}svg"


def test_favicon_is_served_and_linked_on_every_page(tmp_path):
    from arena.web.app import create_web_app
    from support.web_fakes import ScriptedProvider, spec_for

    folder = tmp_path / "artifacts"
    write_artifact_set(folder, [board()], snapshot="f1", meta=SOURCE)
    with serve_folder(folder) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert_favicon(client, favicon_href(client.get("/leaderboard").text))

    settings = Settings(data_dir=tmp_path / "data", secret_key="favicon-test")
    providers = [ScriptedProvider("model-one"), ScriptedProvider("model-two")]
    app = create_web_app(
        settings,
        registry=[spec_for(p.name) for p in providers],
        providers={p.name: p for p in providers},
    )
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        for path in ("/", "/side-by-side", "/direct", "/about", "/leaderboard"):
            page = client.get(path)
            assert page.status_code == 200, path
            assert_favicon(client, favicon_href(page.text))
            assert re.search(r'<a class="brand" href="/?">Arena</a>', page.text), path


def judge_report(folder: Path, name: str) -> dict:
    """A report as ``arena judge show --json`` writes it, from small judgment files."""
    from arena.judge.report import build_report

    single = [
        {"model": m, "question_id": q, "turn": 1, "score": s, "judge": "judge-model"}
        for m, scores in (("alpha-large", (9, 8)), ("beta-medium", (6, 7)))
        for q, s in enumerate(scores)
    ]
    # Game 1 shows the baseline as A: "B>A" is a win for the model (game 2 is a tie).
    outcomes = {"alpha-large": ["B>A"] * 14 + ["A>B"] * 2, "beta-medium": ["B>A", "A>B"] * 8}
    graded = [
        {
            "model": m,
            "question_id": f"q{i}",
            "baseline": "gamma-small",
            "games": [{"score": verdict}, {"score": "A=B"}],
        }
        for m, verdicts in outcomes.items()
        for i, verdict in enumerate(verdicts)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    judgments = folder / f"{name}.jsonl"
    judgments.write_text("\n".join(json.dumps(r) for r in single + graded) + "\n")
    report = build_report([str(judgments)], rounds=20, seed=1).as_json()
    (folder / f"{name}.json").write_text(json.dumps(report), encoding="utf-8")
    judgments.unlink()
    return report


def test_judge_columns_appear_only_with_results_for_the_board(tmp_path):
    folder = tmp_path / "artifacts"
    write_artifact_set(folder, [board()], snapshot="j1", meta=SOURCE)
    judge_dir = tmp_path / "judge"
    report = judge_report(judge_dir, "scores")
    hard = {r["model"]: r for r in report["arena_hard"]["rows"]}

    with serve_folder(folder, judge_results=judge_dir) as base:
        data = httpx.get(f"{base}/api/leaderboard", timeout=10).json()
    assert data["judge"] == {
        "mt_bench": True,
        "arena_hard": True,
        "arena_hard_baseline": "gamma-small",
        "arena_hard_style": False,
    }
    models = {m["model"]: m for m in data["models"]}
    assert models["alpha-large"]["mt_bench"] == 8.5 and models["beta-medium"]["mt_bench"] == 6.5
    assert models["gamma-small"]["mt_bench"] is None
    assert models["gamma-small"]["arena_hard"] == 50.0  # the baseline against itself
    assert models["alpha-large"]["arena_hard"] == round(hard["alpha-large"]["score"], 1)
    assert models["alpha-large"]["arena_hard_lower"] == round(hard["alpha-large"]["lower"], 1)
    assert models["alpha-large"]["arena_hard"] > models["beta-medium"]["arena_hard"]
    assert models["beta-medium"]["arena_hard"] == pytest.approx(50.0, abs=0.1)  # even record
    assert models["delta-tiny"]["arena_hard"] is None

    # No folder, or reports about other models only: no judge columns.
    elsewhere = tmp_path / "other-judge"
    elsewhere.mkdir()
    (elsewhere / "r.json").write_text(
        json.dumps({"mt_bench": {"models": [{"model": "zeta", "overall": 7.0}]}})
    )
    (elsewhere / "broken.json").write_text("{not json")
    for judge_results in (None, tmp_path / "missing", elsewhere):
        with serve_folder(folder, judge_results=judge_results) as base:
            data = httpx.get(f"{base}/api/leaderboard", timeout=10).json()
        assert data["judge"]["mt_bench"] is False and data["judge"]["arena_hard"] is False
        assert all(m["mt_bench"] is None for m in data["models"])


def test_judge_reports_newest_wins_and_baselines_never_mix(tmp_path):
    import os

    from arena.web.judge_results import JudgeResultsFolder, JudgeScore

    def hard(model: str, score: float) -> dict:
        return {"model": model, "score": score, "lower": score - 5, "upper": score + 5}

    old = {
        "mt_bench": {"models": [{"model": "a", "overall": 5.0}, {"model": "b", "overall": 6.0}]},
        "arena_hard": {"baseline": "x", "rows": [hard("a", 40.0)]},
    }
    new = {
        "mt_bench": {"models": [{"model": "a", "overall": 7.0}]},
        "arena_hard": {"baseline": "y", "rows": [hard("b", 60.0)], "style_rows": [hard("b", 58.0)]},
    }
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    os.utime(tmp_path / "old.json", ns=(1_000_000_000, 1_000_000_000))
    folder = JudgeResultsFolder(tmp_path)
    results = folder.results()
    assert results.baseline == "y"
    plain = results.for_board(False)
    # The newest MT-Bench score; Arena-Hard against x is not mixed with scores against y.
    assert plain["a"] == JudgeScore(7.0)
    assert plain["b"] == JudgeScore(6.0, 60.0, 55.0, 65.0)
    styled = results.for_board(True)
    assert styled["b"] == JudgeScore(6.0, 58.0, 53.0, 63.0) and styled["a"] == JudgeScore(7.0)

    # A rewritten report is read again on the next request.
    new["mt_bench"]["models"][0]["overall"] = 7.5
    (tmp_path / "new.json").write_text(json.dumps(new))
    os.utime(tmp_path / "new.json", ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    assert folder.results().for_board(False)["a"].mt_bench == 7.5


def test_judge_results_folder_setting(monkeypatch, tmp_path):
    assert Settings(data_dir=tmp_path).resolved_judge_results_dir() == tmp_path / "judge"
    monkeypatch.setenv("ARENA_JUDGE_RESULTS_DIR", str(tmp_path / "reports"))
    assert Settings(data_dir=tmp_path).resolved_judge_results_dir() == tmp_path / "reports"


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [(1366, 768), (390, 844)])
def test_page_shows_charts_and_judge_columns_in_a_browser(tmp_path, viewport):
    from playwright.sync_api import expect, sync_playwright

    folder = tmp_path / "artifacts"
    write_artifact_set(folder, [board(battles=900)], snapshot="b0", meta=SOURCE)
    write_artifact_set(folder, [board(), board(style=True)], snapshot="b1", meta=SOURCE)
    judge_dir = tmp_path / "judge"
    judge_report(judge_dir, "scores")
    width, height = viewport
    with serve_folder(folder, judge_results=judge_dir) as base, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{base}/leaderboard")
            expect(page.locator("html")).to_have_attribute("data-ready", "true")
            expect(page.locator(".lb-site-header .brand")).to_have_text("Arena")
            for chart in ("intervals", "win-fraction", "battle-counts", "history"):
                svg = page.locator(f"#lb-chart-{chart}")
                svg.scroll_into_view_if_needed()
                expect(svg).to_be_visible()
                box = svg.bounding_box()
                assert box and 0 < box["width"] <= width and box["height"] > 0, (chart, box)
            assert page.evaluate("document.documentElement.scrollWidth") <= width

            # Judge columns beside the arena rating, with the Arena-Hard interval.
            expect(page.locator("th[data-key=mt_bench]")).to_be_visible()
            expect(page.locator("th[data-key=arena_hard]")).to_be_visible()
            alpha = page.locator("#lb-table tbody tr").first
            expect(alpha.locator("th .lb-model")).to_have_text("alpha-large")
            assert "8.50" in alpha.locator("td").all_text_contents()
            expect(page.locator("#lb-judge-note")).to_contain_text("gamma-small")

            # A filter change redraws the charts for the models left.
            rows = page.locator("#lb-chart-intervals .lb-row")
            expect(rows).to_have_count(4)
            page.get_by_label("Minimum votes").fill("100")
            page.get_by_label("Minimum votes").press("Enter")
            expect(page.locator("#lb-table tbody tr")).to_have_count(3)
            expect(rows).to_have_count(3)
            page.get_by_label("Style control").select_option("true")
            expect(page.locator("#lb-figure-battle-counts")).to_contain_text("Counted on every")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            assert problems == []
        finally:
            browser.close()


@pytest.mark.browser
def test_empty_state_in_a_browser(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with serve_folder(tmp_path / "none") as base, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{base}/leaderboard")
            expect(page.get_by_role("heading", name="No leaderboard yet")).to_be_visible()
            expect(page.locator("#lb-empty")).to_contain_text("--artifacts DIR")
            expect(page.locator("#lb-table")).to_be_hidden()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            assert problems == []
        finally:
            browser.close()
