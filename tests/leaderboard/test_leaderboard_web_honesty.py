"""The leaderboard page and API show what the board is unsure of: warnings, preliminary
models after the ranked ones, unbounded intervals, separate parts, Elo and votes needed;
and the live board's method comes from ARENA_LEADERBOARD_* settings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from arena.config import Settings
from arena.leaderboard.artifacts import write_artifact_set
from arena.leaderboard.table import Leaderboard, ModelRow
from arena.web.leaderboard_page import leaderboard_router
from arena.web.leaderboard_payload import leaderboard_payload
from support.browser import launch_chromium
from support.servers import serve_app

INF = math.inf
WARNINGS = [
    "The models form 2 parts that share no battles; ratings only compare within a part.",
    "1 model has fewer than 300 battles and is preliminary.",
]
METHOD = {
    "model": "bradley_terry",
    "ties": "davidson",
    "ci": "bootstrap",
    "simultaneous": "bonferroni",
    "reweight": "ipw",
    "style_normalization": "reference",
    "min_battles": 300,
    "elo": True,
    "votes_needed_width": 20.0,
    "confidence": 0.95,
    "rounds": 200,
}


def row(model: str, rating: float, low: float, high: float, rank: int | None, **extra) -> ModelRow:
    battles = extra.pop("num_battles", 900)
    return ModelRow(
        model=model,
        rating=rating,
        ci_lower=low,
        ci_upper=high,
        rank_ub=rank,
        num_battles=battles,
        wins=battles // 2,
        losses=battles // 3,
        ties=1,
        **extra,
    )


def honest_board() -> Leaderboard:
    """Two parts, a preliminary model listed first on purpose, unbounded sides, Elo."""
    models = (
        # The highest rating, but too few battles: never ranked above the others.
        row("delta-tiny", 1300.0, 1150.0, 1450.0, None, num_battles=40, preliminary=True,
            notes=("all_ties",), elo=1320.0, elo_lower=1200.0, elo_upper=1440.0,
            votes_needed=900),
        row("alpha-large", 1250.0, 1220.0, INF, 1, notes=("never_lost", "regularized"),
            elo=1240.0, elo_lower=1200.0, elo_upper=1280.0, votes_needed=0),
        row("beta-medium", 1100.0, 1080.0, 1120.0, 2, elo=1110.0, elo_lower=1090.0,
            elo_upper=1130.0, votes_needed=150),
        row("gamma-small", 1000.0, -INF, 1050.0, 1, part=2, notes=("never_won",),
            elo=990.0, elo_lower=950.0, elo_upper=1030.0, votes_needed=400),
    )  # fmt: skip
    meta = {
        "warnings": WARNINGS,
        "method": METHOD,
        "counts": {"battles_rated": 1500, "preliminary": 1, "parts": 2},
    }
    coefficients = {"length": {"value": 0.2, "lower": 0.1, "upper": INF}}
    return Leaderboard("full", False, models, coefficients, meta)


def plain_board() -> Leaderboard:
    models = (
        row("alpha-large", 1200.0, 1180.0, 1220.0, 1),
        row("beta-medium", 1100.0, 1080.0, 1120.0, 2),
    )
    meta = {"method": {"ci": "sandwich", "confidence": 0.9}, "counts": {"battles_rated": 9}}
    return Leaderboard("coding", False, models, {}, meta)


@pytest.fixture
def served(tmp_path: Path):
    folder = tmp_path / "artifacts"
    write_artifact_set(folder, [honest_board(), plain_board()], snapshot="h1")
    app = FastAPI()
    app.include_router(leaderboard_router(folder))
    with serve_app(app) as base:
        yield base


def strict_json(text: str):
    """Parse as a strict JSON reader would: NaN and Infinity are errors."""

    def refuse(name: str):
        raise AssertionError(f"{name} in the JSON body")

    return json.loads(text, parse_constant=refuse)


def test_api_reports_preliminary_unbounded_parts_elo_and_votes_needed(served):
    with httpx.Client(base_url=served, timeout=10) as client:
        response = client.get("/api/leaderboard")
        assert response.status_code == 200
        data = strict_json(response.text)
        coding = strict_json(client.get("/api/leaderboard", params={"category": "coding"}).text)
        many_votes = client.get("/api/leaderboard", params={"min_votes": 100}).json()

    models = {m["model"]: m for m in data["models"]}
    # Ranked models first (board order kept), the preliminary one last whatever its rating.
    assert list(models) == ["alpha-large", "beta-medium", "gamma-small", "delta-tiny"]
    assert models["delta-tiny"]["rank"] is None and models["delta-tiny"]["preliminary"] is True
    assert [models[m]["rank"] for m in ("alpha-large", "beta-medium", "gamma-small")] == [1, 2, 1]
    assert not any(models[m]["preliminary"] for m in ("alpha-large", "beta-medium", "gamma-small"))
    # Unbounded sides are null; bounded ones keep their value.
    assert models["alpha-large"]["ci_upper"] is None
    assert models["alpha-large"]["ci_lower"] == 1220.0
    assert models["gamma-small"]["ci_lower"] is None
    assert models["gamma-small"]["ci_upper"] == 1050.0
    assert models["alpha-large"]["notes"] == ["never_lost", "regularized"]
    assert models["gamma-small"]["part"] == 2 and models["alpha-large"]["part"] == 1
    assert models["beta-medium"]["elo"] == 1110.0
    assert (models["beta-medium"]["elo_lower"], models["beta-medium"]["elo_upper"]) == (
        1090.0,
        1130.0,
    )
    assert models["beta-medium"]["votes_needed"] == 150
    assert models["alpha-large"]["votes_needed"] == 0

    assert data["warnings"] == WARNINGS
    assert data["meta"]["method"] == METHOD
    assert data["parts"] == 2 and data["min_battles"] == 300
    assert data["columns"] == {"part": True, "elo": True, "votes_needed": True}
    assert data["style_coefficients"]["length"] == {"value": 0.2, "lower": 0.1, "upper": None}

    # A plain board: no warnings, one part, no optional columns.
    assert coding["warnings"] == [] and coding["parts"] == 1
    assert coding["columns"] == {"part": False, "elo": False, "votes_needed": False}
    assert [m["rank"] for m in coding["models"]] == [1, 2]
    assert coding["models"][0]["elo"] is None and coding["models"][0]["notes"] == []

    # Filters still apply: the preliminary model (40 battles) goes below 100 votes.
    assert [m["model"] for m in many_votes["models"]] == [
        "alpha-large",
        "beta-medium",
        "gamma-small",
    ]


def test_payload_of_a_board_written_before_these_fields(tmp_path):
    """Old artifacts (no preliminary/part/notes/Elo keys) still serve, with the defaults."""
    old = {
        "category": "full",
        "style_control": False,
        "models": [
            {"model": "m1", "rating": 1010.0, "ci_lower": 1000.0, "ci_upper": 1020.0,
             "rank_ub": 1, "num_battles": 500, "wins": 300, "losses": 200, "ties": 0},
        ],
        "meta": {"method": {"ci": "bootstrap", "rounds": 100}},
    }  # fmt: skip
    board = Leaderboard.from_dict(old)
    artifact_set = write_artifact_set(tmp_path, [board], snapshot="old")
    data = leaderboard_payload(artifact_set, board, model_info={})
    (m1,) = data["models"]
    assert (m1["rank"], m1["preliminary"], m1["part"], m1["notes"]) == (1, False, 1, [])
    assert m1["elo"] is None and m1["votes_needed"] is None
    assert data["warnings"] == [] and data["min_battles"] == 300 and data["parts"] == 1
    assert strict_json(json.dumps(data)) == data


def test_page_html_carries_the_warnings_without_script(served):
    html = httpx.get(f"{served}/leaderboard", timeout=10).text
    assert "Infinity" not in html and "NaN" not in html
    for warning in WARNINGS:
        assert warning in html
    plain = httpx.get(f"{served}/leaderboard", params={"category": "coding"}, timeout=10).text
    assert 'id="lb-warnings"' in plain and "<li>" not in plain.split('id="lb-warnings"')[1][:400]


@pytest.mark.browser
def test_page_shows_what_the_board_is_unsure_of(served):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{served}/leaderboard")
            expect(page.locator("html")).to_have_attribute("data-ready", "true")
            rows = page.locator("#lb-table tbody tr")
            expect(rows).to_have_count(4)

            def models() -> list[str]:
                return page.locator("#lb-table tbody .lb-model").all_text_contents()

            def cell(model: str, key: str) -> str:
                """The text of ``model``'s cell under the column ``key``."""
                keys = page.locator("#lb-table thead th:not([hidden])").evaluate_all(
                    "ths => ths.map(th => th.dataset.key)"
                )
                index = keys.index(key)
                target = rows.filter(has=page.locator(".lb-model", has_text=model)).first
                return target.locator("td, th").nth(index).inner_text().strip()

            # The warnings notice sits above the table and lists every warning.
            warnings = page.locator("#lb-warnings")
            expect(warnings).to_be_visible()
            expect(warnings.locator("li")).to_have_text(WARNINGS)
            above = page.evaluate(
                "document.getElementById('lb-warnings').compareDocumentPosition("
                "document.getElementById('lb-table')) & Node.DOCUMENT_POSITION_FOLLOWING"
            )
            assert above

            # Ranked models by part then rank; the preliminary one last, labelled, unranked.
            assert models() == ["alpha-large", "beta-medium", "gamma-small", "delta-tiny"]
            assert cell("delta-tiny", "rank") == "Preliminary"
            assert cell("alpha-large", "rank") == "1" and cell("gamma-small", "rank") == "1"
            expect(page.locator("#lb-preliminary-note")).to_be_visible()
            expect(page.locator("#lb-preliminary-note")).to_contain_text(
                "fewer than 300 battles are preliminary"
            )

            # Two parts: the Part column and its explanation are shown.
            expect(page.locator("th[data-key=part]")).to_be_visible()
            assert cell("gamma-small", "part") == "2" and cell("alpha-large", "part") == "1"
            expect(page.locator("#lb-parts-note")).to_be_visible()

            # Unbounded sides read ∞; notes have a mark with an explanation and a footnote.
            assert cell("alpha-large", "interval") == "+∞ / -30.0"
            assert cell("gamma-small", "interval") == "+50.0 / -∞"
            never_lost = page.locator("#lb-table tbody a.lb-note-mark[href='#lb-note-never_lost']")
            expect(never_lost).to_have_count(1)
            assert "Never lost" in (never_lost.get_attribute("title") or "")
            expect(page.locator("#lb-note-never_lost")).to_be_visible()
            expect(page.locator("#lb-note-regularized")).to_contain_text("ridge")
            expect(page.locator("#lb-notes li")).to_have_count(4)

            # Elo with its interval, votes needed, and the method line.
            assert cell("beta-medium", "elo") == "1110 (1090–1130)"
            assert cell("beta-medium", "votes_needed") == "150"
            assert cell("alpha-large", "votes_needed") == "0"
            method = page.locator("#lb-method")
            for words in ("Davidson", "95% bootstrap", "200 rounds", "Bonferroni", "reweighted"):
                expect(method).to_contain_text(words)
            expect(page.locator("#lb-ci-label")).to_have_text("95% CI")

            # Sorting keeps the preliminary model after the ranked ones, both ways.
            score = page.get_by_role("button", name="Score")
            score.click()
            expect(page.locator("th[data-key=rating]")).to_have_attribute("aria-sort", "descending")
            assert models() == ["alpha-large", "beta-medium", "gamma-small", "delta-tiny"]
            score.click()
            expect(page.locator("th[data-key=rating]")).to_have_attribute("aria-sort", "ascending")
            assert models() == ["gamma-small", "beta-medium", "alpha-large", "delta-tiny"]
            page.get_by_role("button", name="Votes needed").click()
            assert models() == ["alpha-large", "beta-medium", "gamma-small", "delta-tiny"]
            page.get_by_role("button", name="95% CI").click()  # unbounded = widest
            assert models()[:3] == ["beta-medium", "alpha-large", "gamma-small"]

            # A one-part board without warnings, Elo or votes needed hides all of that.
            page.get_by_label("Category").select_option("coding")
            expect(rows).to_have_count(2)
            expect(warnings).to_be_hidden()
            for key in ("part", "elo", "votes_needed"):
                expect(page.locator(f"th[data-key={key}]")).to_be_hidden()
            expect(page.locator("#lb-preliminary-note")).to_be_hidden()
            expect(page.locator("#lb-notes")).to_be_hidden()
            expect(page.locator("#lb-ci-label")).to_have_text("90% CI")
            expect(method).to_contain_text("90% sandwich")
            assert rows.first.locator("td").count() == 6  # rank, score, CI, votes, org, license

            assert all(url.startswith(served) for url in requests), requests
            assert errors == []
        finally:
            browser.close()


LEADERBOARD_ENV = {
    "ARENA_LEADERBOARD_TIES": "Davidson",
    "ARENA_LEADERBOARD_CI": "sandwich",
    "ARENA_LEADERBOARD_SIMULTANEOUS": "chi2",
    "ARENA_LEADERBOARD_REWEIGHT": "ipw",
    "ARENA_LEADERBOARD_STYLE_NORMALIZATION": "fastchat",
    "ARENA_LEADERBOARD_MIN_BATTLES": "50",
    "ARENA_LEADERBOARD_ELO": "true",
    "ARENA_LEADERBOARD_VOTES_NEEDED_WIDTH": "25",
}


def test_leaderboard_settings_from_the_environment(monkeypatch):
    defaults = Settings()
    assert (defaults.leaderboard_ties, defaults.leaderboard_ci) == ("half", "bootstrap")
    assert defaults.leaderboard_simultaneous is None and defaults.leaderboard_reweight is None
    assert defaults.leaderboard_style_normalization == "reference"
    assert defaults.leaderboard_min_battles == 300 and defaults.leaderboard_elo is False
    assert defaults.leaderboard_votes_needed_width is None

    for name, value in LEADERBOARD_ENV.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.leaderboard_ties == "davidson"  # case does not matter
    assert settings.leaderboard_ci == "sandwich"
    assert settings.leaderboard_simultaneous == "chi2"
    assert settings.leaderboard_reweight == "ipw"
    assert settings.leaderboard_style_normalization == "fastchat"
    assert settings.leaderboard_min_battles == 50
    assert settings.leaderboard_elo is True
    assert settings.leaderboard_votes_needed_width == 25.0

    # "none" (or empty) switches the optional ones off.
    monkeypatch.setenv("ARENA_LEADERBOARD_SIMULTANEOUS", "none")
    monkeypatch.setenv("ARENA_LEADERBOARD_REWEIGHT", "")
    monkeypatch.setenv("ARENA_LEADERBOARD_VOTES_NEEDED_WIDTH", "")
    off = Settings()
    assert off.leaderboard_simultaneous is None and off.leaderboard_reweight is None
    assert off.leaderboard_votes_needed_width is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "ARENA_LEADERBOARD_TIES",
            "thirds",
            "ARENA_LEADERBOARD_TIES must be one of half, davidson",
        ),
        ("ARENA_LEADERBOARD_CI", "jackknife", "must be one of bootstrap, sandwich"),
        ("ARENA_LEADERBOARD_SIMULTANEOUS", "holm", "must be one of none, bonferroni, chi2"),
        (
            "ARENA_LEADERBOARD_REWEIGHT",
            "yes",
            "ARENA_LEADERBOARD_REWEIGHT must be one of none, ipw",
        ),
        ("ARENA_LEADERBOARD_STYLE_NORMALIZATION", "z", "must be one of reference, fastchat"),
        ("ARENA_LEADERBOARD_TIES", "", "ARENA_LEADERBOARD_TIES must be one of half, davidson"),
        ("ARENA_LEADERBOARD_MIN_BATTLES", "-1", "leaderboard_min_battles"),
        ("ARENA_LEADERBOARD_MIN_BATTLES", "many", "leaderboard_min_battles"),
        ("ARENA_LEADERBOARD_ELO", "maybe", "leaderboard_elo"),
        ("ARENA_LEADERBOARD_VOTES_NEEDED_WIDTH", "0", "leaderboard_votes_needed_width"),
        ("ARENA_LEADERBOARD_VOTES_NEEDED_WIDTH", "wide", "leaderboard_votes_needed_width"),
    ],
)
def test_bad_leaderboard_settings_are_refused_clearly(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert message in str(caught.value)


def test_live_board_is_computed_as_configured(monkeypatch):
    from arena.web.live_leaderboard import live_rating_settings

    for name, value in LEADERBOARD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ARENA_LEADERBOARD_ROUNDS", "40")
    rating = live_rating_settings(Settings())
    assert rating.rounds == 40
    assert (rating.ties, rating.ci, rating.simultaneous) == ("davidson", "sandwich", "chi2")
    assert (rating.reweight, rating.style_normalization) == ("ipw", "fastchat")
    assert (rating.min_battles, rating.elo, rating.votes_needed_width) == (50, True, 25.0)
    for name in LEADERBOARD_ENV:
        monkeypatch.delenv(name)
    plain = live_rating_settings(Settings())
    assert plain.simultaneous is None and plain.reweight is None and plain.elo is False
