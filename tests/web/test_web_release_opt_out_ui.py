"""The dataset release box on /history, in a real browser: a voter battles, asks to keep
their conversations out, sees the state (also after a reload), and the store marks the
session's battles ``release_excluded``, past and future. SQLite and PostgreSQL. An error
answer (the session gone from under the page) is shown in the page's language."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from arena.store.models import Battle
from support.web_fakes import ScriptedProvider

NAMES = ("heron-model", "egret-model")
KEEP_OUT = "Keep my conversations out"
KEPT_OUT = "Your conversations are kept out"


def _page(browser: Browser, locale: str = "en-US") -> Page:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def _battle_and_vote(page: Page, url: str) -> None:
    page.goto(url + "/")
    page.locator("#prompt").fill("Tell me about herons.")
    page.locator("#prompt").press("Enter")
    better = page.get_by_role("button", name="A is better")
    expect(better).to_be_enabled()
    better.click()
    expect(page.locator("#status")).to_contain_text("Your vote was recorded")


def _excluded(db) -> dict[str, bool]:
    with db.session(read_only=True) as s:
        return dict(s.execute(select(Battle.id, Battle.release_excluded)).all())


@pytest.mark.browser
def test_the_history_box_keeps_the_sessions_battles_out(
    arena_server, own_database_url, browser: Browser
):
    arena = arena_server([ScriptedProvider(n) for n in NAMES], database_url=own_database_url)
    page = _page(browser)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        _battle_and_vote(page, arena.url)
        [before] = _excluded(arena.db)
        page.goto(arena.url + "/history")
        box = page.get_by_role("region", name="Dataset release")
        expect(box).to_contain_text("may be published in an open dataset")
        expect(box).to_contain_text("personal data")
        expect(box.get_by_text(KEPT_OUT)).to_be_hidden()
        assert _excluded(arena.db) == {before: False}

        box.get_by_role("button", name=KEEP_OUT).click()
        expect(box.get_by_text(KEPT_OUT)).to_be_visible()
        expect(box.get_by_text(KEPT_OUT)).to_contain_text("past and future battles")
        expect(box.get_by_role("button", name=KEEP_OUT)).to_be_hidden()
        assert _excluded(arena.db) == {before: True}
        # The page's session asks the API the same question and gets the same answer.
        assert page.request.get(arena.url + "/api/release-opt-out").json() == {"opted_out": True}

        page.reload()
        box = page.get_by_role("region", name="Dataset release")
        expect(box.get_by_text(KEPT_OUT)).to_be_visible()
        expect(box.get_by_role("button", name=KEEP_OUT)).to_be_hidden()

        # A battle this session starts afterwards is kept out too.
        _battle_and_vote(page, arena.url)
        excluded = _excluded(arena.db)
        assert len(excluded) == 2 and all(excluded.values())
        assert errors == []
    finally:
        page.context.close()


@pytest.mark.browser
def test_another_session_is_not_kept_out(arena_server, browser: Browser):
    arena = arena_server([ScriptedProvider(n) for n in NAMES])
    leaving, staying = _page(browser), _page(browser)
    try:
        _battle_and_vote(leaving, arena.url)
        _battle_and_vote(staying, arena.url)
        leaving.goto(arena.url + "/history")
        leaving.get_by_role("button", name=KEEP_OUT).click()
        expect(leaving.get_by_text(KEPT_OUT)).to_be_visible()
        assert sorted(_excluded(arena.db).values()) == [False, True]
        staying.goto(arena.url + "/history")
        expect(staying.get_by_role("button", name=KEEP_OUT)).to_be_visible()
        expect(staying.get_by_text(KEPT_OUT)).to_be_hidden()
    finally:
        leaving.context.close()
        staying.context.close()


@pytest.mark.browser
def test_a_refused_opt_out_is_explained_in_spanish(arena_server, browser: Browser):
    arena = arena_server([ScriptedProvider(n) for n in NAMES])
    page = _page(browser, locale="es-ES")
    try:
        page.goto(arena.url + "/history")
        box = page.get_by_role("region", name="Publicación de datos")
        expect(box).to_contain_text("conjunto de datos abierto")
        # The session cookies are gone (as when the browser cleared them): the POST is
        # refused with csrf_failed, and the page words it, not the API's English.
        page.context.clear_cookies()
        button = box.get_by_role("button", name="Excluir mis conversaciones")
        button.click()
        expect(box.get_by_role("alert")).to_have_text(
            "La sesión de esta página ya no es válida. Recarga la página y vuelve a intentarlo."
        )
        expect(button).to_be_enabled()
        expect(box.get_by_text("Tus conversaciones quedan excluidas")).to_be_hidden()
        # Reloading starts a session, and the button then works.
        page.reload()
        page.get_by_role("button", name="Excluir mis conversaciones").click()
        expect(page.get_by_text("Tus conversaciones quedan excluidas")).to_be_visible()
    finally:
        page.context.close()


def test_the_about_page_tells_of_the_release_and_the_way_out(arena_server):
    arena = arena_server([ScriptedProvider(n) for n in NAMES])
    with httpx.Client(base_url=arena.url) as http:
        english = http.get("/about", headers={"Accept-Language": "en"}).text
        spanish = http.get("/about", headers={"Accept-Language": "es"}).text
    assert "may be published in an open dataset" in english
    assert 'keep yours out on the <a href="/history">History</a> page' in english
    assert "conjunto de datos abierto" in spanish
    assert 'en la página <a href="/history">Historial</a>' in spanish
