"""Every HTML page of the site carries the same security headers, the leaderboard included:
a content security policy, no framing by other sites, no MIME sniffing."""

from __future__ import annotations

import httpx
import pytest

from arena.leaderboard.artifacts import write_artifact_set
from arena.leaderboard.table import Leaderboard, ModelRow
from arena.web.pages import SECURITY_HEADERS
from support.browser import launch_chromium
from support.servers import serve_app
from support.web_fakes import ScriptedProvider

PAGES = ("/", "/side-by-side", "/direct", "/about", "/leaderboard")


def _board(folder, models: list[str]) -> None:
    rows = tuple(
        ModelRow(name, 1000.0 - i, 990.0 - i, 1010.0 - i, i + 1, 10, 5, 4, 1)
        for i, name in enumerate(models)
    )
    write_artifact_set(folder, [Leaderboard("full", False, rows, {}, {})], snapshot="h")


@pytest.fixture
def site(arena_server):
    arena = arena_server([ScriptedProvider("m-1"), ScriptedProvider("m-2")])
    _board(arena.settings.data_dir / "leaderboard", ["m-1", "m-2"])
    return arena


def test_every_page_has_the_same_security_headers(site):
    for path in PAGES:
        response = httpx.get(site.url + path, timeout=10)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html"), path
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
    policy = httpx.get(site.url + "/leaderboard").headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy


def test_the_leaderboard_page_is_protected_before_any_leaderboard_exists(arena_server):
    arena = arena_server([ScriptedProvider("m-1"), ScriptedProvider("m-2")])
    response = httpx.get(arena.url + "/leaderboard", timeout=10)
    assert response.status_code == 200 and "no leaderboard" in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("secure", [False, True])
def test_cookies_are_secure_when_the_operator_says_clients_use_https(arena_server, secure):
    arena = arena_server([ScriptedProvider("m-1")], settings={"secure_cookies": secure})
    cookies = httpx.get(arena.url + "/api/session", timeout=10).headers.get_list("set-cookie")
    assert {c.split("=", 1)[0] for c in cookies} == {"arena_session", "arena_csrf"}
    for cookie in cookies:
        assert ("; secure" in cookie.lower()) is secure, cookie
        assert "samesite=lax" in cookie.lower(), cookie


@pytest.mark.browser
def test_another_site_cannot_frame_the_leaderboard(site):
    """The attack: a page on another origin frames /leaderboard (clickjacking). The browser
    must refuse to render it, as it refuses the arena pages; a file without the headers,
    framed next to it, shows that framing itself works."""
    from playwright.sync_api import expect, sync_playwright
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    def framing(path: str) -> HTMLResponse:
        return HTMLResponse(
            f'<iframe id="victim" src="{site.url}{path}"></iframe>'
            f'<iframe id="control" src="{site.url}/static/arena.css"></iframe>'
        )

    attacker = Starlette(
        routes=[
            Route("/board", lambda _: framing("/leaderboard")),
            Route("/arena", lambda _: framing("/")),
        ]
    )
    with serve_app(attacker) as evil, sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            for path in ("/board", "/arena"):
                page.goto(evil + path)
                expect(page.frame_locator("#control").locator("body")).to_contain_text("{")
                assert page.frame_locator("#victim").locator("main, nav").count() == 0, path
        finally:
            browser.close()
