"""Errors of the JSON API as the pages show them: worded in the page's language from the
error's stable code (with the numbers the answer carries, such as Retry-After, or the page's
own limits), never the API's English text, which is only the fallback for a code the page
does not know. The leaderboard page's bad-query line and its filter reload error too.
Everything is triggered for real against a running arena, in a Spanish browser."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from support.servers import serve_app
from support.web_fakes import ScriptedProvider

NAMES = ("kestrel-model", "merlin-model")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="es-ES")
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


def _send(page: Page, text: str, image: dict[str, Any] | None = None) -> None:
    if image is not None:
        page.locator("#image").set_input_files(files=[image])
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")


def _notice(page: Page) -> Any:
    return page.locator("#notices .notice-error")


@pytest.mark.browser
def test_an_image_to_text_only_models_says_waiting_will_not_help(arena_server, page: Page):
    arena = arena_server([ScriptedProvider(n) for n in NAMES])
    page.goto(arena.url + "/")
    _send(
        page,
        "¿Qué hay en la foto?",
        {"name": "foto.png", "mimeType": "image/png", "buffer": _png()},
    )
    expect(_notice(page)).to_have_text(
        "Esta arena no tiene dos modelos que puedan leer imágenes, así que esperar no servirá "
        "de nada. Envía tu mensaje sin la imagen."
    )
    # The message goes back into the box, to be sent without the image.
    expect(page.locator("#prompt")).to_have_value("¿Qué hay en la foto?")


@pytest.mark.browser
def test_a_file_that_is_no_image_is_named_so(arena_server, page: Page):
    arena = arena_server([ScriptedProvider(n, vision=True) for n in NAMES])
    page.goto(arena.url + "/")
    fake = {"name": "notas.png", "mimeType": "image/png", "buffer": b"just some text, no image"}
    _send(page, "Mira esto", fake)
    expect(_notice(page)).to_have_text(
        "Este archivo no es una imagen PNG, JPEG, WebP o GIF legible. Elige otra imagen."
    )


@pytest.mark.browser
def test_a_rate_limit_gives_the_seconds_to_wait(arena_server, page: Page):
    arena = arena_server(
        [ScriptedProvider(n) for n in NAMES], settings={"requests_per_session": "1/hour"}
    )
    page.goto(arena.url + "/")
    _send(page, "Hola")
    expect(_notice(page)).to_have_text(
        re.compile(
            r"^Demasiadas solicitudes en poco tiempo\. Vuelve a intentarlo en \d+ segundos\.$"
        )
    )
    seconds = int(re.search(r"\d+", _notice(page).inner_text()).group())  # type: ignore[union-attr]
    assert 1 < seconds <= 3600


@pytest.mark.browser
def test_the_turn_limit_names_the_pages_own_limit(arena_server, page: Page):
    arena = arena_server([ScriptedProvider(n) for n in NAMES], settings={"max_turns": 1})
    page.goto(arena.url + "/")
    _send(page, "Primera pregunta")
    expect(page.get_by_role("button", name="A es mejor")).to_be_enabled()
    _send(page, "Segunda pregunta")
    expect(_notice(page)).to_have_text(
        "Esta conversación llegó a su límite de 1 turno. Empieza una nueva ronda."
    )


@pytest.mark.browser
def test_the_same_model_on_both_sides_and_an_unknown_code(arena_server, page: Page):
    arena = arena_server([ScriptedProvider(n) for n in NAMES])
    page.goto(arena.url + "/side-by-side")
    page.locator("#model-b").select_option(page.locator("#model-a").input_value())
    _send(page, "Hola a los dos")
    expect(_notice(page)).to_have_text("Elige dos modelos distintos.")

    # A code this page does not know yet (a newer server): its own text is the fallback.
    def refuse(route: Any) -> None:
        body = {"error": {"message": "A brand new refusal.", "type": "x", "code": "brand_new"}}
        route.fulfill(status=400, content_type="application/json", body=json.dumps(body))

    page.route("**/api/battles", refuse)
    page.locator("#model-a").select_option(NAMES[0])
    page.locator("#model-b").select_option(NAMES[1])
    _send(page, "Otra vez")
    expect(_notice(page)).to_have_text("A brand new refusal.")

    page.unroute("**/api/battles")
    page.route("**/api/battles", lambda route: route.abort())
    _send(page, "Y otra")
    expect(_notice(page)).to_have_text(
        "No se pudo contactar con el servidor. Comprueba tu conexión y vuelve a intentarlo."
    )


@pytest.mark.browser
def test_the_error_text_is_the_same_whichever_models_battle(arena_server, browser: Browser):
    """Trust rule: a refused battle reads the same in arenas of different models."""
    seen = []
    for names in (NAMES, ("osprey-model", "harrier-model")):
        arena = arena_server([ScriptedProvider(n) for n in names])
        context = browser.new_context(locale="es-ES")
        try:
            p = context.new_page()
            p.set_default_timeout(15_000)
            p.goto(arena.url + "/")
            _send(p, "Foto", {"name": "f.png", "mimeType": "image/png", "buffer": _png()})
            expect(_notice(p)).to_have_count(1)
            seen.append(_notice(p).inner_text())
        finally:
            context.close()
    assert seen[0] == seen[1]
    assert not any(n in seen[0] for n in NAMES)


# --- the leaderboard page ------------------------------------------------------------------


def _board(category: str, rows: list[tuple[str, float, int]]) -> Any:
    from arena.leaderboard.table import Leaderboard, ModelRow

    models = tuple(
        ModelRow(
            name,
            rating,
            rating - 20,
            rating + 20,
            rank,
            votes,
            wins=votes // 2,
            losses=votes // 3,
            preliminary=False,
        )
        for rank, (name, rating, votes) in enumerate(rows, start=1)
    )
    meta = {"counts": {"battles_rated": 2500}, "method": {"min_battles": 50, "ci": "bootstrap"}}
    return Leaderboard(category, False, models, {}, meta)


ROWS = [("granite-large", 1210.0, 900), ("basalt-mini", 1100.0, 800)]


@pytest.fixture
def board_app(tmp_path) -> Iterator[tuple[str, Any]]:
    from arena.leaderboard.artifacts import write_artifact_set
    from arena.web.leaderboard_page import leaderboard_router

    folder = tmp_path / "artifacts"
    write_artifact_set(folder, [_board("full", ROWS), _board("coding", ROWS)], snapshot="s1")
    app = FastAPI()
    app.include_router(leaderboard_router(folder))
    with serve_app(app) as base:
        yield base, folder


def test_a_bad_category_on_the_page_is_worded_in_the_pages_language(board_app):
    base, _ = board_app
    with httpx.Client(base_url=base) as http:
        spanish = http.get("/leaderboard?category=nope", headers={"Accept-Language": "es"})
        english = http.get("/leaderboard?category=nope&style_control=true")
        api = http.get("/api/leaderboard?category=nope", headers={"Accept-Language": "es"})
    assert spanish.status_code == 404
    assert "No hay clasificación para esta categoría." in spanish.text
    assert "Ver la clasificación general" in spanish.text
    assert "available:" not in spanish.text  # not the API's English
    assert "There is no leaderboard with style control for this category." in english.text
    # The JSON API keeps its English and its code.
    assert (
        api.json()["error"]["code"] == "not_found" and "available" in api.json()["error"]["message"]
    )


@pytest.mark.browser
def test_a_filter_reload_error_is_worded_in_spanish(board_app, page: Page):
    from arena.leaderboard.artifacts import write_artifact_set

    base, folder = board_app
    page.goto(base + "/leaderboard")
    page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
    # A recomputation drops the coding board while the page still offers it.
    write_artifact_set(folder, [_board("full", ROWS)], snapshot="s2")
    page.locator("#lb-category").select_option("coding")
    expect(page.locator("#lb-status")).to_have_text("No hay clasificación para esta categoría.")
