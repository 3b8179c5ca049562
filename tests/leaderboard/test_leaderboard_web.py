"""The leaderboard page and API on a real uvicorn server, and in headless Chromium."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from arena.leaderboard.artifacts import write_artifact_set
from arena.leaderboard.table import Leaderboard, ModelRow
from arena.web.leaderboard_page import leaderboard_router
from support.browser import launch_chromium
from support.servers import serve_app

EVIL = "<script>window.__pwned = 1</script>evil-model"
EVIL_IMG = '<img src=x onerror="window.__pwned = 2">'
MODEL_INFO = {
    "alpha-large": ("Alpha Labs", "Apache-2.0"),
    "beta-medium": ("Beta Inc", "Proprietary"),
    "gamma-small": ("Alpha Labs", "MIT"),
    EVIL: ("Evil Org", "Proprietary"),
}


def make_board(category: str, style: bool, specs: list[tuple[str, float, int]]) -> Leaderboard:
    rows = []
    for rank, (name, rating, votes) in enumerate(specs, start=1):
        rows.append(
            ModelRow(name, rating, rating - 15, rating + 15, rank, votes, votes // 2, votes // 3, 1)
        )
    return Leaderboard(category, style, tuple(rows), {}, {"counts": {"battles_rated": 1234}})


def write_sets(folder: Path, *, shift: float = 0.0, snapshot: str = "s1") -> None:
    full = [
        ("alpha-large", 1200.0 + shift, 900),
        ("beta-medium", 1100.0, 40),
        (EVIL, 1050.0, 700),
        ("gamma-small", 1000.0, 300),
        (EVIL_IMG, 950.0, 120),
    ]
    coding = [("gamma-small", 1300.0, 80), ("alpha-large", 1150.0, 90)]
    boards = [
        make_board("full", False, full),
        make_board("full", True, list(reversed(full))),
        make_board("coding", False, coding),
    ]
    write_artifact_set(folder, boards, snapshot=snapshot)


@pytest.fixture
def app_and_dir(tmp_path):
    folder = tmp_path / "artifacts"
    refreshed = []
    app = FastAPI()
    app.include_router(
        leaderboard_router(folder, model_info=MODEL_INFO, refresh=lambda: refreshed.append(1))
    )
    return app, folder, refreshed


def test_api_filters_and_errors(app_and_dir):
    app, folder, refreshed = app_and_dir
    with serve_app(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        empty = client.get("/api/leaderboard")
        assert empty.status_code == 404
        assert empty.json()["error"]["code"] == "no_leaderboard"
        page = client.get("/leaderboard")
        assert page.status_code == 200 and "no leaderboard has been computed yet" in page.text

        write_sets(folder)
        data = client.get("/api/leaderboard").json()
        assert data["category"] == "full" and data["style_control"] is False
        assert [m["model"] for m in data["models"]][:2] == ["alpha-large", "beta-medium"]
        assert data["models"][0]["organization"] == "Alpha Labs"
        assert data["organizations"] == ["Alpha Labs", "Beta Inc", "Evil Org"]
        assert [c["name"] for c in data["categories"]] == ["full", "coding"]
        assert data["categories"][0]["style_control"] == [False, True]

        org = client.get("/api/leaderboard", params={"organization": "Alpha Labs"}).json()
        assert [m["model"] for m in org["models"]] == ["alpha-large", "gamma-small"]
        assert [m["rank"] for m in org["models"]] == [1, 4]  # ranks stay those of the fit
        lic = client.get("/api/leaderboard", params={"license": "Proprietary"}).json()
        assert {m["model"] for m in lic["models"]} == {"beta-medium", EVIL}
        votes = client.get("/api/leaderboard", params={"min_votes": 200}).json()
        assert {m["model"] for m in votes["models"]} == {"alpha-large", EVIL, "gamma-small"}
        style = client.get("/api/leaderboard", params={"style_control": "true"}).json()
        assert style["style_control"] is True and style["models"][0]["model"] == EVIL_IMG

        missing = client.get("/api/leaderboard", params={"category": "math"})
        assert missing.status_code == 404 and "available" in missing.json()["error"]["message"]
        assert client.get("/api/leaderboard", params={"min_votes": -1}).status_code == 422
        assert client.get("/leaderboard/assets/../../etc/passwd").status_code == 404
        assert client.get("/leaderboard/assets/secret.py").status_code == 404
        js = client.get("/leaderboard/assets/leaderboard.js")
        assert js.status_code == 200 and "textContent" in js.text

        # A recomputed set shows up on the next request, without restarting anything.
        time.sleep(0.01)
        write_sets(folder, shift=100.0, snapshot="s2")
        again = client.get("/api/leaderboard").json()
        assert again["snapshot"] == "s2" and again["models"][0]["rating"] == 1300.0

        assert client.post("/api/leaderboard/refresh").status_code == 202
        assert refreshed == [1]


def test_page_escapes_model_names_server_side(app_and_dir):
    app, folder, _ = app_and_dir
    write_sets(folder)
    with serve_app(app) as base:
        html = httpx.get(f"{base}/leaderboard", timeout=10).text
    assert "<script>window.__pwned" not in html
    assert "\\u003cscript\\u003e" in html  # the embedded JSON carries it escaped
    assert "https://" not in html  # no CDN, nothing remote


@pytest.mark.browser
def test_page_in_a_real_browser(app_and_dir):
    from playwright.sync_api import expect, sync_playwright

    app, folder, _ = app_and_dir
    write_sets(folder)
    with serve_app(app) as base, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # phone width
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/leaderboard")
            expect(page.locator("html")).to_have_attribute("data-ready", "true")
            body = page.locator("#lb-table tbody tr")
            expect(body).to_have_count(5)

            def models() -> list[str]:
                return page.locator("#lb-table tbody th").all_text_contents()

            assert models()[0] == "alpha-large"
            # Hostile names are shown as text and never run.
            assert EVIL in models() and EVIL_IMG in models()
            assert page.evaluate("window.__pwned") is None
            assert page.locator("#lb-table tbody script, #lb-table tbody img").count() == 0
            first = body.first.locator("td")
            assert first.nth(0).text_content() == "1"
            assert first.nth(4).text_content() == "Alpha Labs"

            # Sort by votes (descending first), then ascending, using the keyboard.
            votes_button = page.get_by_role("button", name="Votes")
            votes_button.click()
            expect(page.locator("th[data-key=num_battles]")).to_have_attribute(
                "aria-sort", "descending"
            )
            assert models()[0] == "alpha-large" and models()[-1] == "beta-medium"
            votes_button.focus()
            page.keyboard.press("Enter")
            expect(page.locator("th[data-key=num_battles]")).to_have_attribute(
                "aria-sort", "ascending"
            )
            assert models()[0] == "beta-medium"
            page.get_by_role("button", name="Model").click()
            assert models() == sorted(models(), key=str.casefold)

            # The category filter switches to the coding artifact.
            page.get_by_label("Category").select_option("coding")
            expect(body).to_have_count(2)
            assert models() == ["alpha-large", "gamma-small"]  # still sorted by name
            expect(page.locator("#lb-status")).to_contain_text("Coding")
            assert "category=coding" in page.url
            # Coding has no style-controlled artifact: that option is disabled.
            assert page.locator("#lb-style option[value=true]").is_disabled()

            page.get_by_label("Category").select_option("full")
            expect(body).to_have_count(5)
            page.get_by_label("Style control").select_option("true")
            expect(page.locator("#lb-status")).to_contain_text("with style control")
            page.get_by_label("Organization").select_option("Alpha Labs")
            expect(body).to_have_count(2)
            page.get_by_label("Minimum votes").fill("500")
            page.get_by_label("Minimum votes").press("Enter")
            expect(body).to_have_count(1)

            # Nothing is fetched from anywhere but the test server; the page fits a phone.
            assert all(url.startswith(base) for url in requests), requests
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390
            assert page.evaluate("window.__pwned") is None
            assert errors == []
            if shots := os.environ.get("ARENA_TEST_SCREENSHOTS"):
                page.screenshot(path=f"{shots}/leaderboard-phone.png", full_page=True)
        finally:
            browser.close()


def test_router_uses_callable_model_info(tmp_path):
    folder = tmp_path / "a"
    write_sets(folder)
    registry = {"alpha-large": ("First", "L1")}
    app = FastAPI()
    app.include_router(leaderboard_router(folder, model_info=lambda: registry))
    with serve_app(app) as base:
        first = httpx.get(f"{base}/api/leaderboard", timeout=10).json()
        registry["alpha-large"] = ("Second", "L2")
        second = httpx.get(f"{base}/api/leaderboard", timeout=10).json()
    assert first["models"][0]["organization"] == "First"
    assert second["models"][0]["organization"] == "Second"
    assert json.dumps(second)  # plain JSON


def test_votes_arriving_refresh_the_page(tmp_path, make_rows, write_rows):
    """The live-arena flow: new battles land, a refresh is requested over HTTP, and the API
    serves the recomputed snapshot without a restart."""
    from functools import partial

    from arena.leaderboard.build import refresh_artifacts
    from arena.leaderboard.compute import RatingSettings
    from arena.leaderboard.refresher import ArtifactRefresher

    battles = tmp_path / "battles.jsonl"
    artifacts = tmp_path / "artifacts"
    rows = make_rows(300)
    write_rows(rows, "jsonl", name=battles.name)
    recompute = partial(
        refresh_artifacts,
        battles,
        artifacts,
        settings=RatingSettings(ci="sandwich"),
        min_category_battles=50,
    )
    refresher = ArtifactRefresher(recompute, min_interval_s=0.0)
    first = refresher.run_now()
    assert first.has("full", False) and first.has("full", True)
    app = FastAPI()
    app.include_router(leaderboard_router(artifacts, refresh=refresher.request))
    try:
        with serve_app(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            before = client.get("/api/leaderboard").json()
            assert before["snapshot"] == first.snapshot
            assert before["meta"]["counts"]["battles_rated"] == 270
            assert "hard_prompts" in [c["name"] for c in before["categories"]]

            # More votes arrive (all won by the weakest model) and a refresh is requested.
            extra = [
                {"model_a": "delta-tiny", "model_b": "alpha-large", "winner": "model_a"}
                for _ in range(200)
            ]
            write_rows(rows + extra, "jsonl", name=battles.name)
            assert client.post("/api/leaderboard/refresh").status_code == 202
            deadline = time.monotonic() + 120  # a refit on a busy machine takes a while
            after = before
            while after["snapshot"] == before["snapshot"] and time.monotonic() < deadline:
                time.sleep(0.1)
                after = client.get("/api/leaderboard").json()
            assert after["snapshot"] != before["snapshot"]
            assert after["meta"]["counts"]["battles_rated"] == 470
            rank = {m["model"]: m["rating"] for m in after["models"]}
            old = {m["model"]: m["rating"] for m in before["models"]}
            assert rank["delta-tiny"] > old["delta-tiny"]
    finally:
        refresher.close()


def test_api_documents_its_answers_and_errors(app_and_dir):
    app, folder, _ = app_and_dir
    write_sets(folder)
    with serve_app(app) as base:
        schema = httpx.get(f"{base}/openapi.json", timeout=10).json()
        page = httpx.get(f"{base}/leaderboard", timeout=10)
    responses = schema["paths"]["/api/leaderboard"]["get"]["responses"]
    assert {"200", "400", "404"} <= set(responses)
    assert "LeaderboardData" in str(responses["200"])
    assert "ErrorResponse" in str(responses["404"]) and "ErrorResponse" in str(responses["400"])
    # The page and its files are not API operations.
    assert "/leaderboard" not in schema["paths"]
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
