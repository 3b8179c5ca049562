"""The arena pages in a real browser: headless Chromium driven by Playwright against the
app served by uvicorn on loopback."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from support.web_fakes import ScriptedProvider

pytestmark = pytest.mark.browser

ANSWER = (
    "Here is a **short** answer with a list:\n\n- rivers\n- mountains\n\n"
    "```python\nprint('hello')\n```\n"
)
XSS = (
    "Look: <script>window.__pwned = 1; alert('script')</script> and "
    "<img src=x onerror=\"window.__pwned = 2; alert('img')\"> and "
    "[link](javascript:window.__pwned=3) done."
)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


def _streamers(*names: str, vision: bool = False, reply: str = ANSWER) -> list[ScriptedProvider]:
    return [ScriptedProvider(n, reply=reply, interval_s=0.04, vision=vision) for n in names]


def _send(page: Page, text: str) -> None:
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")


def _wait_answers(page: Page, sides: tuple[str, ...] = ("a", "b")) -> None:
    for side in sides:
        expect(page.locator(f"#log-{side} .msg-assistant:not(.streaming)")).to_have_count(1)


def test_full_battle_streams_votes_and_reveals(arena_server, page: Page):
    arena = arena_server(_streamers("alpha-sage", "beta-crest"))
    page.goto(arena.url + "/")
    expect(page.locator("#pane-title-a")).to_contain_text("Model A")
    expect(page.locator("button[data-vote]").first).to_be_disabled()
    _send(page, "Tell me about rivers")
    # Both sides stream at once: each shows partial text before either is finished.
    page.wait_for_function(
        """() => ['a', 'b'].every(s => {
             const m = document.querySelector('#log-' + s + ' .msg-assistant.streaming');
             return m && m.textContent.length > 0; })"""
    )
    _wait_answers(page)
    for side in ("a", "b"):
        answer = page.locator(f"#log-{side} .msg-assistant")
        expect(answer.locator("strong")).to_have_text("short")
        expect(answer.locator("pre.highlight code span.nb")).to_have_text("print")
    expect(page.locator("#log-a .msg-user")).to_have_text("Tell me about rivers")
    body = page.content()
    assert "alpha-sage" not in body and "beta-crest" not in body
    a_better = page.get_by_role("button", name="A is better")
    expect(a_better).to_be_enabled()
    a_better.click()
    reveal_a = page.locator('[data-side-reveal="a"]')
    expect(reveal_a).to_be_visible()
    names = {reveal_a.inner_text(), page.locator('[data-side-reveal="b"]').inner_text()}
    assert names == {"alpha-sage", "beta-crest"}
    for button in page.locator("button[data-vote]").all():
        expect(button).to_be_disabled()
    expect(page.locator("#status")).to_contain_text("vote was recorded")
    # A new round starts clean and can be played with the keyboard alone.
    page.get_by_role("button", name="New round").click()
    expect(page.locator("#log-a .msg")).to_have_count(0)
    expect(reveal_a).to_be_hidden()


def test_named_side_by_side(arena_server, page: Page):
    arena = arena_server(_streamers("gamma-one", "delta-two", "epsilon-three"))
    page.goto(arena.url + "/side-by-side")
    page.locator("#model-a").select_option("epsilon-three")
    page.locator("#model-b").select_option("gamma-one")
    _send(page, "Compare yourselves")
    _wait_answers(page)
    page.get_by_role("button", name="B is better").click()
    expect(page.locator('[data-side-reveal="a"]')).to_have_text("epsilon-three")
    expect(page.locator('[data-side-reveal="b"]')).to_have_text("gamma-one")
    assert [len(p.requests) for p in arena.providers.values()] == [1, 0, 1]


def test_direct_chat_with_feedback(arena_server, page: Page):
    arena = arena_server(_streamers("solo-model", "other-model"))
    page.goto(arena.url + "/direct")
    page.locator("#model-a").select_option("other-model")
    _send(page, "Hi there")
    _wait_answers(page, ("a",))
    _send(page, "And again")
    expect(page.locator("#log-a .msg-assistant:not(.streaming)")).to_have_count(2)
    page.get_by_role("button", name="Upvote").click()
    expect(page.locator("#status")).to_contain_text("Thanks for the feedback")
    assert len(arena.providers["other-model"].requests) == 2
    assert not arena.providers["solo-model"].requests


def test_image_battle(arena_server, page: Page, tmp_path):
    providers = _streamers("seer-one", "seer-two", vision=True) + _streamers("text-one", "text-two")
    arena = arena_server(providers)
    buf = io.BytesIO()
    Image.new("RGB", (120, 80), (30, 160, 90)).save(buf, "PNG")
    picture = tmp_path / "green.png"
    picture.write_bytes(buf.getvalue())
    page.goto(arena.url + "/")
    page.locator("#image").set_input_files(str(picture))
    expect(page.locator("#image-name")).to_have_text("green.png")
    _send(page, "What colour is this?")
    expect(page.locator("#log-a .msg-user img")).to_be_visible()
    _wait_answers(page)
    assert len(providers[0].requests) == len(providers[1].requests) == 1
    assert not providers[2].requests and not providers[3].requests
    content = providers[0].requests[0].messages[0].content
    assert content[1].image_url.url.startswith("data:image/png;base64,")


def test_model_html_stays_inert(arena_server, page: Page):
    arena = arena_server(_streamers("xss-one", "xss-two", reply=XSS))
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(arena.url + "/")
    _send(page, "Say something dangerous")
    _wait_answers(page)
    page.wait_for_timeout(300)
    answer = page.locator("#log-a .msg-assistant")
    expect(answer).to_contain_text("<script>window.__pwned = 1;")  # shown as text
    expect(answer).to_contain_text("<img src=x onerror=")
    assert page.locator(".log script, .log img, .log iframe").count() == 0
    assert page.locator('.log a[href^="javascript"]').count() == 0
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == []
    assert errors == []
    assert len(arena.providers) == 2


def test_layout_screenshots(arena_server, browser: Browser, tmp_path):
    arena = arena_server(_streamers("shot-one", "shot-two"))
    for name, viewport in (("phone", (390, 844)), ("desktop", (1280, 900))):
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        pg = context.new_page()
        pg.goto(arena.url + "/")
        _send(pg, "Give me a short answer with code")
        _wait_answers(pg)
        # Nothing overflows sideways at either width.
        overflow = pg.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: page is {overflow}px wider than the screen"
        pg.screenshot(path=str(tmp_path / f"arena-{name}.png"), full_page=True)
        context.close()
    assert (tmp_path / "arena-phone.png").stat().st_size > 10_000


def test_navigation_and_demo_notice(tmp_path, page: Page):
    """With no model configured the built-in demo models run, labelled, and the About page
    says how to add real ones; the nav reaches every page, leaderboard included."""
    from arena.config import Settings
    from arena.web.app import create_web_app

    from .conftest import serve

    settings = Settings(data_dir=tmp_path / "data", secret_key="nav-secret")
    app = create_web_app(settings)  # no registry, no providers: the embedded default
    with serve(app) as url:
        page.goto(url + "/")
        expect(page.locator(".site-footer")).to_contain_text("Only built-in demo models")
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="About").click()
        expect(page.locator("#demo-title")).to_have_text("Only demo models are running")
        expect(page.locator("#add-models")).to_be_visible()
        expect(page.locator(".model-list .badge", has_text="demo").first).to_be_visible()
        nav.get_by_role("link", name="Side by side").click()
        expect(page.locator("#model-a option").first).to_contain_text("(demo)")
        nav.get_by_role("link", name="Leaderboard").click()
        expect(page).to_have_url(url + "/leaderboard")
        expect(page.get_by_role("heading", name="Leaderboard", exact=True)).to_be_visible()
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Direct chat").click()
        expect(page).to_have_url(url + "/direct")


def test_a_failed_side_takes_no_vote_until_regenerated(arena_server, page: Page):
    providers = _streamers("kappa-one", "lambda-two")
    providers[1].fail = "before"
    arena = arena_server(providers)
    page.goto(arena.url + "/")
    _send(page, "Hello")
    expect(page.locator(".msg-assistant.msg-error")).to_contain_text("could not answer")
    expect(page.locator("#status")).to_contain_text("cannot be voted on")
    for button in page.locator("button[data-vote]").all():
        expect(button).to_be_disabled()
    regenerate = page.get_by_role("button", name="Regenerate")
    expect(regenerate).to_be_enabled()
    arena.providers["lambda-two"].fail = None
    regenerate.click()
    expect(page.locator(".msg-assistant.msg-error")).to_have_count(0)
    _wait_answers(page)
    expect(page.get_by_role("button", name="A is better")).to_be_enabled()
