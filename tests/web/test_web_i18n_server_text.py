"""Text the server writes, shown in the reader's language: the stream's notices come as codes
the page words (the API keeps its English), and the leaderboard's warnings, categories,
chart headings, captions and SVG text follow the page's language, on a board computed for
real from battles. Spanish pages are compared with English ones: any text the two share,
names aside, escaped the translation layer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect

from arena.leaderboard.build import refresh_artifacts
from arena.leaderboard.compute import RatingSettings
from arena.ratings.bradley_terry import resample_prior_warning
from arena.web.leaderboard_page import leaderboard_router
from arena.web.leaderboard_text import category_language, warning_code
from support.servers import serve_app
from support.web_fakes import ScriptedProvider

MODELS = ["granite-large", "basalt-mini", "slate-micro", "obsidian-x", "pumice-y"]
# Words that read the same in both languages: the brand, names of things, technical terms.
SAME_IN_BOTH = {"Arena", "English", "Español", "Elo", "MT-Bench", "Arena-Hard", "UTC"}


def write_battles(path: Path) -> None:
    """Battles from a Bradley–Terry model, plus a pair apart from the rest where one model
    always wins: the real fit then warns of a split graph, an unbounded rating and
    preliminary models; prompts in two languages give language categories."""
    rng = np.random.default_rng(3)
    strength = {"granite-large": 1.0, "basalt-mini": 0.2, "slate-micro": -0.5}
    names = list(strength)
    rows = []
    for i in range(400):
        a, b = (names[k] for k in rng.choice(3, 2, replace=False))
        if "slate-micro" in (a, b) and rng.random() < 0.9:
            continue  # few battles: preliminary
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        rows.append(
            {
                "model_a": a,
                "model_b": b,
                "winner": "model_a" if rng.random() < p else "model_b",
                "tstamp": 1.7e9 + 3600.0 * i,
                "language": "Spanish" if i % 3 else "English",
                "is_code": i % 2 == 0,
                "anony": True,
            }
        )
    for i in range(12):
        rows.append(
            {
                "model_a": "obsidian-x",
                "model_b": "pumice-y",
                "winner": "model_a",
                "tstamp": 1.7e9 + i,
                "language": "English",
                "anony": True,
            }
        )
    path.write_text("\n".join(json.dumps(r) for r in rows))


@pytest.fixture(scope="module")
def board_dir(tmp_path_factory) -> Path:
    """A leaderboard computed by the real pipeline (with its timeline: a history chart)."""
    root = tmp_path_factory.mktemp("i18n-board")
    write_battles(root / "battles.jsonl")
    settings = RatingSettings(rounds=20, min_battles=50)
    refresh_artifacts(root / "battles.jsonl", root / "artifacts", settings=settings)
    return root / "artifacts"


@pytest.fixture(scope="module")
def board_url(board_dir: Path) -> Iterator[str]:
    app = FastAPI()
    app.include_router(leaderboard_router(board_dir))
    with serve_app(app) as base:
        yield base


# --- codes in the JSON ---------------------------------------------------------------------


def test_the_real_fits_warnings_and_categories_come_with_codes(board_url: str):
    with httpx.Client(base_url=board_url, timeout=30) as http:
        data = http.get("/api/leaderboard", headers={"Accept-Language": "es"}).json()
    # The API stays English; the codes say the same, with their numbers and names.
    assert any(w.startswith("comparison graph is disconnected") for w in data["warnings"])
    coded = {c["code"]: c["params"] for c in data["warning_codes"]}
    assert len(data["warning_codes"]) == len(data["warnings"])
    assert coded["disconnected"] == {"parts": 2}
    assert coded["no_finite_optimum"] == {
        "never_lost": "obsidian-x",
        "never_won": "pumice-y",
        "ridge": 0.01,
    }
    assert coded["preliminary"]["min_battles"] == 50 and coded["preliminary"]["n"] >= 1
    categories = {c["name"]: c for c in data["categories"]}
    assert categories["full"]["label"] == "Overall" and categories["full"]["language"] is None
    assert categories["language:Spanish"]["language"] == "es"
    assert "coding" in categories


def test_warning_codes_read_every_known_warning_and_leave_others_alone():
    assert warning_code(resample_prior_warning(4, 100)) == {
        "code": "bootstrap_prior",
        "params": {"n": 4, "rounds": 100, "precision": 1},
    }
    assert warning_code("3 of 100 bootstrap rounds did not converge")["params"] == {
        "n": 3,
        "rounds": 100,
    }
    assert warning_code("feature 'bold_count' is constant in these battles; left out of the fit")[
        "params"
    ] == {"feature": "bold_count"}
    assert warning_code("something new the fit says") == {"code": None, "params": {}}
    assert category_language("language:German") == "de"
    assert category_language("language:Klingonese") is None
    assert category_language("coding") is None


# --- charts drawn in the page's language ---------------------------------------------------


def test_the_charts_are_drawn_in_the_readers_language(board_url: str):
    with httpx.Client(base_url=board_url, timeout=30) as http:
        spanish = http.get("/leaderboard/plots", headers={"Accept-Language": "es"})
        english = http.get("/leaderboard/plots", headers={"Accept-Language": "en"})
    assert "Accept-Language" in spanish.headers.get("vary", "")
    assert "<h3>Puntuaciones con intervalos</h3>" in spanish.text
    assert "<h3>Ratings with intervals</h3>" in english.text
    assert "Puntuaciones con intervalos del 95%" in spanish.text  # the SVG's own title
    assert "Batallas por pareja" in spanish.text and "(provisional)" in spanish.text
    assert ">escala</text>" in spanish.text and ">scale</text>" in english.text
    for word in ("Battles per pair", "preliminary", " to ", ">scale<", "Rating"):
        assert word not in spanish.text, word


# --- what a reader sees: Spanish against English -------------------------------------------

VISIBLE_TEXT = """() => {
  const skip = "script,style,code,pre,kbd,time,noscript";
  const found = [document.title];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walk.nextNode(); node; node = walk.nextNode()) {
    if (!node.parentElement || node.parentElement.closest(skip)) continue;
    found.push(node.textContent);
  }
  for (const el of document.body.querySelectorAll("[title],[aria-label],[placeholder],[alt]")) {
    for (const name of ["title", "aria-label", "placeholder", "alt"]) {
      if (el.hasAttribute(name)) found.push(el.getAttribute(name));
    }
  }
  return found;
}"""


def visible(page: Page, names: list[str]) -> set[str]:
    """Texts a reader meets (hidden ones too), with a word of at least three letters once
    the given names are taken out."""
    texts = set()
    for text in page.evaluate(VISIBLE_TEXT):
        text = " ".join(text.split())
        bare = text
        for name in names:
            bare = bare.replace(name, "")
        if re.search(r"[A-Za-z]{3}", bare) and not text.startswith("/"):
            texts.add(text)
    return texts


def _page_in(browser: Browser, locale: str) -> Any:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


def _leaderboard_texts(browser: Browser, url: str, locale: str) -> set[str]:
    context, page = _page_in(browser, locale)
    try:
        page.goto(url + "/leaderboard")
        page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
        return visible(page, MODELS)
    finally:
        context.close()


@pytest.mark.browser
def test_the_leaderboard_with_data_keeps_no_english_in_spanish(browser: Browser, board_url: str):
    english = _leaderboard_texts(browser, board_url, "en-US")
    spanish = _leaderboard_texts(browser, board_url, "es-ES")
    # The board has what this test is about: warnings, categories and charts.
    assert any("comparison graph" in t or "parts that share no battles" in t for t in english)
    assert "Ratings with intervals" in english and "Overall" in english
    same = (spanish & english) - SAME_IN_BOTH
    assert not same, f"untranslated: {sorted(same)}"

    context, page = _page_in(browser, "es-ES")
    try:
        page.goto(board_url + "/leaderboard")
        page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
        warnings = page.locator("#lb-warnings-list li")
        expect(warnings.first).to_be_visible()
        expect(page.locator("#lb-warnings-list")).to_contain_text(
            "Los modelos forman 2 partes sin batallas en común"
        )
        expect(page.locator("#lb-warnings-list")).to_contain_text("Nunca perdieron: obsidian-x.")
        options = page.locator("#lb-category option")
        assert "General" in options.all_inner_texts()
        assert "Español" in options.all_inner_texts()
        # A filter change reloads the English JSON and the charts: both still read Spanish.
        page.locator("#lb-category").select_option("language:Spanish")
        expect(page.locator("#lb-status")).to_contain_text("— Español")
        expect(page.locator("#lb-figure-intervals h3")).to_have_text("Puntuaciones con intervalos")
        expect(page).to_have_url(re.compile(r"category=language%3ASpanish"))
    finally:
        context.close()


def _failed_battle_texts(arena: Any, browser: Browser, locale: str) -> tuple[set[str], dict]:
    context, page = _page_in(browser, locale)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(arena.url + "/")
        page.locator("#prompt").fill("Hola")
        page.locator("#prompt").press("Enter")
        expect(page.locator("#log-a .msg-assistant.msg-error")).to_have_count(1)
        expect(page.locator("#log-b .msg-assistant:not(.streaming)")).to_have_count(1)
        expect(page.locator("#status")).not_to_be_empty()
        seen = {
            "failed": page.locator("#log-a .msg-assistant").inner_text(),
            "status": page.locator("#status").inner_text(),
        }
        assert errors == []
        return visible(page, ["Hola", "A plain answer."]), seen
    finally:
        context.close()


@pytest.mark.browser
def test_a_failed_answer_is_told_in_spanish(arena_server, browser: Browser):
    arena = arena_server(
        [ScriptedProvider("cliff-one", fail="before"), ScriptedProvider("cliff-two")]
    )
    service = arena.app.state.web.service
    real = service.sampler

    class FailingFirst:
        """The real sampler's pair, the failing model on side A (one it could draw)."""

        def distribution(self, **kwargs: Any) -> Any:
            return real.distribution(**kwargs)

        def sample(self, rng: Any, **kwargs: Any) -> Any:
            from arena.battles.pair_sampler import SampledPair

            p = real.distribution(**kwargs).probability("cliff-one", "cliff-two")
            assert p > 0
            return SampledPair("cliff-one", "cliff-two", p)

    service.sampler = FailingFirst()
    english, shown_en = _failed_battle_texts(arena, browser, "en-US")
    spanish, shown_es = _failed_battle_texts(arena, browser, "es-ES")
    assert shown_en["failed"].startswith("Model A could not answer.")
    assert shown_es["failed"] == (
        "Modelo A no pudo responder. Vuelve a generar las respuestas o empieza una ronda nueva."
    )
    assert shown_es["status"].startswith("Una respuesta falló, así que esta ronda no se puede")
    same = (spanish & english) - SAME_IN_BOTH
    assert not same, f"untranslated: {sorted(same)}"


@pytest.mark.browser
def test_an_identity_leak_is_told_in_spanish_and_coded_for_clients(arena_server, browser: Browser):
    arena = arena_server(
        [
            ScriptedProvider("orchid-prime", reply="Hola, soy orchid-prime."),
            ScriptedProvider("fern-minor", reply="Hola, soy un asistente."),
        ]
    )
    client = arena.client()
    try:
        _response, events = client.send(client.new_battle(), "¿Quién eres?")
    finally:
        client.close()
    leaks = [e.data for e in events if e.event == "leak"]
    assert [leak["code"] for leak in leaks] == ["identity_leak"]
    assert events[-1].event == "end" and events[-1].data["notice"] == "identity_leak"
    assert "will not count" in leaks[0]["message"]  # the API's English stays

    context, page = _page_in(browser, "es-ES")
    try:
        page.goto(arena.url + "/")
        page.locator("#prompt").fill("¿Quién eres?")
        page.locator("#prompt").press("Enter")
        notice = page.locator("#notices .notice")
        expect(notice).to_have_count(1)
        expect(notice).to_contain_text(re.compile(r"^La respuesta de Modelo [AB] nombra un modelo"))
        expect(page.locator("#status")).to_have_text(
            "Una de las respuestas revela qué modelo la escribió. Puedes votar igualmente, "
            "pero este voto no contará para la clasificación."
        )
    finally:
        context.close()


def test_the_share_page_words_a_failed_answer_in_the_readers_language():
    """share.html with a shared battle whose answer failed (as ``shared_view`` gives it)."""
    from starlette.requests import Request

    from arena.web.i18n import make_templates
    from arena.web.share import FAILED_ANSWER_TEXT, SHARED_TITLES, shared_answer

    templates = make_templates(Path(__file__).resolve().parents[2] / "src/arena/web/templates")
    shared = {
        "mode": "direct",
        "mode_label": "Direct chat",
        "created_at": "2026-12-04T10:00:00+00:00",
        "vote": "upvote",
        "vote_label": "Upvote",
        "identity_leaked": False,
        "sides": [{"side": "a", "label": "Model", "model": "moss-small", "demo": False}],
        "turns": [
            {"prompt": "Hola", "images": 0, "answers": [{"side": "a", **shared_answer("", True)}]}
        ],
    }
    pages = {}
    for lang in ("en", "es"):
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/share/x",
            "query_string": b"",
            "headers": [(b"accept-language", lang.encode())],
        }
        context = {
            "shared": shared,
            "shared_titles": SHARED_TITLES,
            "failed_answer_text": FAILED_ANSWER_TEXT,
            "csrf_token": "",
            "nav": [],
            "active": "share",
            "root_path": "",
            "static_url": lambda name: "/static/" + name,
            "highlight_css_url": "/static/highlight.css",
            "only_demo_models": False,
        }
        pages[lang] = templates.TemplateResponse(Request(scope), "share.html", context).body
    failed = re.compile(r'<li class="msg msg-assistant msg-error">(.*?)</li>', re.S)
    assert failed.findall(pages["es"].decode()) == ["<p>Este modelo no pudo responder.</p>"]
    assert failed.findall(pages["en"].decode()) == ["<p>This model could not answer.</p>"]
