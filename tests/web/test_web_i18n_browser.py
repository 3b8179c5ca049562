"""The translation layer in a real browser: a whole battle in Spanish, the language picker,
and the leaderboard script's own strings (split from test_web_i18n.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from support.web_fakes import ScriptedProvider

ANSWER = "Here is an answer with code:\n\n```python\nprint('hola')\n```\n"


@pytest.fixture
def spanish_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="es-ES")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.mark.browser
def test_a_whole_battle_in_spanish(arena_server, spanish_page: Page):
    page = spanish_page
    arena = arena_server(
        [ScriptedProvider(n, reply=ANSWER, interval_s=0.02) for n in ("río-uno", "río-dos")]
    )
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(arena.url + "/")
    assert page.evaluate("() => document.documentElement.lang") == "es"
    expect(page.locator("h1")).to_have_text("Batalla: dos modelos anónimos")
    expect(page.locator("#pane-title-a")).to_contain_text("Modelo A")
    page.locator("#prompt").fill("Háblame de los ríos")
    page.locator("#prompt").press("Enter")
    for side in ("a", "b"):
        expect(page.locator(f"#log-{side} .msg-assistant:not(.streaming)")).to_have_count(1)
    # Strings the script writes: the status line and the code block's copy button.
    expect(page.locator("#status")).to_have_text(
        "Compara las respuestas y vota (teclas 1–4), o sigue chateando."
    )
    copy = page.locator("#log-a button.copy-code")
    expect(copy).to_have_text("Copiar")
    expect(copy).to_have_attribute("aria-label", "Copiar el código")
    votes = page.get_by_role("group", name="¿Qué respuesta es mejor?")
    better = votes.get_by_role("button", name="A es mejor")
    expect(better).to_be_enabled()
    expect(better).to_have_attribute("title", "A es mejor (tecla 1)")
    better.click()
    expect(page.locator("#status")).to_contain_text(
        "¡Gracias! Tu voto se ha registrado. Pulsa Nueva ronda para volver a competir."
    )
    expect(page.get_by_role("link", name="Compartir esta batalla")).to_be_visible()
    expect(page.locator("#vote-reveal")).to_contain_text("Modelo A: río-")
    share = page.get_by_role("link", name="Compartir esta batalla").get_attribute("href")
    page.get_by_role("button", name="Nueva ronda").click()
    expect(page.locator("#log-a .msg")).to_have_count(0)
    assert errors == []
    # The share page it links to speaks Spanish too.
    page.goto(arena.url + share)
    expect(page.locator("h1")).to_have_text("Batalla anónima compartida")
    expect(page.locator(".status")).to_contain_text("Veredicto: El modelo A es mejor")


@pytest.mark.browser
def test_the_language_picker_switches_and_keeps_the_language(arena_server, browser: Browser):
    arena = arena_server([ScriptedProvider("one-model"), ScriptedProvider("two-model")])
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(arena.url + "/about")
        expect(page.locator("h1")).to_have_text("About this arena")
        picker = page.get_by_role("navigation", name="Language")
        picker.get_by_role("link", name="Español").click()
        expect(page.locator("h1")).to_have_text("Acerca de esta arena")
        nav = page.get_by_role("navigation", name="Principal")
        nav.get_by_role("link", name="Lado a lado").click()
        expect(page.locator("h1")).to_have_text("Lado a lado: dos modelos que tú eliges")
        nav = page.get_by_role("navigation", name="Principal")
        nav.get_by_role("link", name="Clasificación").click()
        expect(page.locator("h1")).to_have_text("Clasificación")
        page.get_by_role("navigation", name="Idioma").get_by_role("link", name="English").click()
        expect(page.locator("h1")).to_have_text("Leaderboard")
    finally:
        context.close()


def _board(category: str, rows: list[tuple[str, float, int]]) -> Any:
    from arena.leaderboard.table import Leaderboard, ModelRow

    models = tuple(
        ModelRow(
            name,
            rating,
            rating - 20,
            rating + 20,
            None if votes < 50 else rank,
            votes,
            wins=votes // 2,
            losses=votes // 3,
            preliminary=votes < 50,
        )
        for rank, (name, rating, votes) in enumerate(rows, start=1)
    )
    meta = {"counts": {"battles_rated": 2500}, "method": {"min_battles": 50, "ci": "bootstrap"}}
    return Leaderboard(category, False, models, {}, meta)


@pytest.mark.browser
def test_the_leaderboard_script_writes_spanish(browser: Browser, tmp_path):
    from fastapi import FastAPI

    from arena.leaderboard.artifacts import write_artifact_set
    from arena.web.leaderboard_page import leaderboard_router
    from support.servers import serve_app

    folder = tmp_path / "artifacts"
    rows = [("granite-large", 1210.0, 900), ("basalt-mini", 1100.0, 30)]
    write_artifact_set(folder, [_board("full", rows)], snapshot="s1")
    app = FastAPI()
    app.include_router(leaderboard_router(folder, model_info={"granite-large": ("Org", "MIT")}))
    context = browser.new_context(locale="es-ES")
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        with serve_app(app) as base:
            page.goto(base + "/leaderboard")
            page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
            expect(page.locator("h1")).to_have_text("Clasificación")
            expect(page.locator("#lb-status")).to_contain_text("Se muestran 2 de 2 modelos")
            expect(page.locator("#lb-meta")).to_contain_text("batallas · instantánea s1")
            expect(page.locator("#lb-method")).to_contain_text("Método: intervalos bootstrap")
            expect(page.locator("td.lb-preliminary-label")).to_have_text("Provisional")
            expect(page.locator("#lb-preliminary-note")).to_contain_text(
                "Los modelos con menos de 50 batallas son provisionales"
            )
            expect(page.locator("#lb-organization option").first).to_have_text("Todas")
    finally:
        context.close()
