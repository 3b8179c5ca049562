"""The vote buttons are on screen and clickable the moment the answers end, on a laptop
(1366x768) and a phone (390x844), after short and long answers; and they can be pressed with
the keyboard (1, 2, 3, 4), never while the user is typing in the message box."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from arena.store.models import Vote
from support.processes import wait_until
from support.web_fakes import ScriptedProvider

pytestmark = pytest.mark.browser

VIEWPORTS = {"laptop": (1366, 768), "phone": (390, 844)}
SHORT = "A short answer."
# About 60 paragraphs: several screens tall at either width, so the page must scroll.
LONG = "\n\n".join(
    f"Paragraph {i}: rivers carve valleys over many years, carrying sand and stone to the sea."
    for i in range(1, 61)
)
ANSWERS = {"short": SHORT, "long": LONG}

# For each vote button: is its centre inside the viewport, and is the button (or something
# inside it) what a click at that point would hit?
BUTTONS_ON_TOP = """() => Array.from(document.querySelectorAll('#votebar button[data-vote]'))
  .map(b => {
    const r = b.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    const inside = x >= 0 && y >= 0 && x < window.innerWidth && y < window.innerHeight;
    const hit = inside ? document.elementFromPoint(x, y) : null;
    return {vote: b.dataset.vote, x, y, inside, onTop: !!hit && b.contains(hit),
            hit: hit ? hit.tagName + '.' + hit.className : null};
  })"""


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[str], Page]]:
    """``open_page(viewport) -> Page`` in a fresh browser context, closed after the test."""
    contexts: list[BrowserContext] = []

    def open_(viewport: str) -> Page:
        width, height = VIEWPORTS[viewport]
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        return page

    yield open_
    for context in contexts:
        context.close()


def _providers(reply: str, *names: str) -> list[ScriptedProvider]:
    return [ScriptedProvider(n, reply=reply, interval_s=0.001) for n in names]


def _send(page: Page, text: str) -> None:
    page.locator("#prompt").fill(text)
    page.locator("#prompt").press("Enter")


def _assert_buttons_in_view(page: Page, expected: list[str]) -> None:
    buttons = page.evaluate(BUTTONS_ON_TOP)
    assert [b["vote"] for b in buttons] == expected
    for b in buttons:
        assert b["inside"], (
            f"{b['vote']} button's centre ({b['x']:.0f}, {b['y']:.0f}) is off screen"
        )
        assert b["onTop"], f"{b['vote']} button is covered by {b['hit']}"


def _votes(arena) -> list[str]:  # type: ignore[no-untyped-def]
    with arena.db.session() as s:
        return [v.type for v in s.scalars(select(Vote)).all()]


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("length", ANSWERS)
def test_battle_vote_buttons_are_in_view_when_the_answers_end(
    arena_server, open_page, viewport: str, length: str
):
    arena = arena_server(_providers(ANSWERS[length], "river-one", "river-two"))
    page = open_page(viewport)
    page.goto(arena.url + "/")
    _send(page, "Write a long essay about rivers, many paragraphs please")
    expect(page.locator("#log-b .msg-assistant:not(.streaming)")).to_have_count(1)
    expect(page.get_by_role("button", name="Tie")).to_be_enabled()
    _assert_buttons_in_view(page, ["a", "b", "tie", "bothbad"])
    if length == "long":
        assert page.evaluate("() => document.documentElement.scrollHeight > 2 * innerHeight")
    # The keyboard: 2 votes for B; the revealed names then show right by the vote result.
    page.keyboard.press("2")
    expect(page.locator("#vote-reveal")).to_be_visible()
    expect(page.locator("#vote-reveal")).to_contain_text("river-one")
    expect(page.locator("#vote-reveal")).to_contain_text("river-two")
    expect(page.locator('button[data-vote="b"]')).to_have_attribute("aria-pressed", "true")
    assert _votes(arena) == ["b"]
    reveal = page.locator("#vote-reveal").bounding_box()
    assert reveal and reveal["y"] >= 0
    assert reveal["y"] + reveal["height"] <= VIEWPORTS[viewport][1]


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("length", ANSWERS)
def test_direct_feedback_buttons_are_in_view_when_the_answer_ends(
    arena_server, open_page, viewport: str, length: str
):
    arena = arena_server(_providers(ANSWERS[length], "solo-model"))
    page = open_page(viewport)
    page.goto(arena.url + "/direct")
    _send(page, "Write a long essay about rivers, many paragraphs please")
    expect(page.locator("#log-a .msg-assistant:not(.streaming)")).to_have_count(1)
    expect(page.get_by_role("button", name="Flag")).to_be_enabled()
    _assert_buttons_in_view(page, ["upvote", "downvote", "flag"])
    # Typing "1" in the message box types it; Esc leaves the box, then 2 is a downvote.
    page.locator("#prompt").press("1")
    expect(page.locator("#prompt")).to_have_value("1")
    page.locator("#prompt").press("Escape")
    page.keyboard.press("2")
    expect(page.locator("#status")).to_contain_text("Thanks for the feedback")
    # Had "1" voted, the upvote would have come first and the downvote been refused.
    assert wait_until(lambda: _votes(arena), what="the vote row") == ["downvote"]
    expect(page.locator("#prompt")).to_have_value("1")


def test_shortcuts_are_silent_while_typing_and_before_answers(arena_server, open_page):
    arena = arena_server(_providers(SHORT, "calm-one", "calm-two"))
    page = open_page("laptop")
    page.goto(arena.url + "/")
    buttons = page.locator("#votebar button[data-vote]")
    for i, value in enumerate(["a", "b", "tie", "bothbad"], start=1):
        button = buttons.nth(i - 1)
        expect(button).to_have_attribute("data-vote", value)
        expect(button).to_have_attribute("aria-keyshortcuts", str(i))
    page.locator("body").press("1")  # nothing to vote on yet: no battle, no error
    expect(page.locator("#notices .notice")).to_have_count(0)
    _send(page, "Hello")
    group = page.get_by_role("group", name="Which answer is better?")
    expect(group.get_by_role("button", name="A is better")).to_be_enabled()
    page.locator("#prompt").focus()
    page.keyboard.type("4 and 1")
    expect(page.locator("#prompt")).to_have_value("4 and 1")
    expect(page.locator("#vote-reveal")).to_be_hidden()
    page.locator("#prompt").press("Escape")
    page.keyboard.press("3")
    expect(page.locator("#vote-reveal")).to_contain_text("calm-one")
    assert _votes(arena) == ["tie"]
    for button in buttons.all():
        expect(button).to_be_disabled()
    page.keyboard.press("1")  # voting is over: the key does nothing
    expect(page.locator("#status")).to_contain_text("vote was recorded")
    expect(page.locator("#notices .notice")).to_have_count(0)
    assert _votes(arena) == ["tie"]
