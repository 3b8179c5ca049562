"""Markdown rendered while an answer streams: throttled ``render`` frames of sanitized HTML
that show no more than the deltas before them, code blocks highlighted with a copy button,
and TeX typeset by the vendored KaTeX under the site's CSP."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser

import pytest
from playwright.sync_api import Page, expect

from arena.web.markdown import render_markdown
from arena.web.turn_frames import LiveMarkdown
from support.web_fakes import ScriptedProvider, SSEEvent, parse_sse

MARKDOWN = (
    "## Rivers\n\nA few of them:\n\n- the Nile\n- the Amazon\n- the Danube\n\n"
    "Some code:\n\n```python\nprint('hello')\n```\n\n"
    "Energy is $E = mc^2$ and the sum is\n\n$$\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$$\n\n"
    "That is all there is to say about rivers, mountains, lakes and seas for today."
)
HOSTILE = (
    "# Title\n\nLook: <script>window.__pwned = 1</script> and "
    '<img src=x onerror="window.__pwned = 2"> and [link](javascript:window.__pwned=3) '
    "and [ok](https://example.org) and $<script>x</script>$ done, "
    "```html\n<script>alert(1)</script>\n```\n"
)


class _Tags(HTMLParser):
    """Every (tag, attributes) of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _assert_safe(html: str) -> None:
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in {"script", "img", "iframe", "style"}, html
        assert not [a for a in attrs if a.startswith("on") or a == "style"], html
        href = attrs.get("href")
        assert href is None or href.startswith(("http://", "https://", "mailto:")), html


# ------------------------------------------------------------------ the renderer and throttle


def test_unfinished_markdown_renders_sensibly():
    open_fence = render_markdown("Code:\n\n```python\ndef f(x):\n    return x")
    assert '<pre class="highlight"><code class="language-python">' in open_fence
    assert '<span class="k">def</span>' in open_fence
    assert render_markdown("Half **bold") == "<p>Half **bold</p>\n"
    assert render_markdown("Open $$x + 1") == "<p>Open $$x + 1</p>\n"


def test_tex_is_kept_whole_for_katex():
    html = render_markdown(r"Inline $a_1 b_1$, \(x_i\), display $$a<b$$ and \[y\]; costs $5.")
    assert '<span class="math-inline">a_1 b_1</span>' in html
    assert '<span class="math-inline">x_i</span>' in html
    assert '<span class="math-display">a&lt;b</span>' in html
    assert '<span class="math-display">y</span>' in html
    assert "costs $5." in html
    assert render_markdown("`$x$`") == "<p><code>$x$</code></p>\n"


def test_every_prefix_of_a_hostile_answer_renders_safe():
    for end in range(1, len(HOSTILE) + 1):
        _assert_safe(render_markdown(HOSTILE[:end]))


def _due(live: LiveMarkdown) -> list[bytes]:
    return asyncio.run(live.due_frames())


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_live_markdown_renders_changed_text_at_most_once_per_interval():
    clock = _Clock()
    live = LiveMarkdown(min_interval_s=0.15, clock=clock)
    assert _due(live) == []
    live.add("a", "## Head")
    live.add("a", "ing\n\n- one")
    [frame] = _due(live)
    assert parse_sse(frame) == [
        SSEEvent("render", {"side": "a", "html": render_markdown("## Heading\n\n- one")})
    ]
    live.add("a", "\n- two")
    assert _due(live) == []  # inside the interval
    assert live.pending
    clock.now += 0.15
    [frame] = _due(live)
    assert parse_sse(frame)[0].data["html"] == render_markdown("## Heading\n\n- one\n- two")
    clock.now += 1.0
    assert _due(live) == []  # nothing new
    live.add("b", "B")
    live.finish("b")  # the done frame says the rest
    assert _due(live) == [] and not live.pending


def test_a_long_text_is_rendered_alike_in_a_worker_thread():
    live = LiveMarkdown(thread_from_chars=10)
    live.add("a", MARKDOWN)
    [frame] = _due(live)
    assert parse_sse(frame)[0].data == {"side": "a", "html": render_markdown(MARKDOWN)}


def test_a_costly_render_widens_the_interval():
    clock = _Clock()

    def slow_render(text: str) -> str:
        clock.now += 0.1  # this render took 100 ms
        return text

    live = LiveMarkdown(min_interval_s=0.15, cost_factor=8.0, clock=clock, render=slow_render)
    live.add("a", "x")
    assert len(_due(live)) == 1  # started at 100.0, so the next is due at 100.8
    live.add("a", "y")
    clock.now = 100.7
    assert _due(live) == []
    clock.now = 100.8
    assert len(_due(live)) == 1


# ------------------------------------------------------------------ through the real app


def _side_frames(events: list[SSEEvent], side: str) -> list[SSEEvent]:
    return [e for e in events if e.data.get("side") == side]


def _check_renders_follow_deltas(events: list[SSEEvent], side: str) -> list[str]:
    """Every render frame of ``side`` is the rendering of exactly the text its deltas sent
    before it; returns the rendered HTML before ``done``."""
    sent, htmls = "", []
    for event in _side_frames(events, side):
        if event.event == "delta":
            sent += event.data["text"]
        elif event.event == "render":
            assert event.data["html"] == render_markdown(sent)
            htmls.append(event.data["html"])
        elif event.event == "done":
            assert event.data["html"] == render_markdown(sent)
            return htmls
    raise AssertionError(f"side {side} never finished")


def test_a_streamed_markdown_answer_is_rendered_before_it_ends(arena_server):
    arena = arena_server(
        [
            ScriptedProvider("alpha-sage", reply=MARKDOWN, interval_s=0.03),
            ScriptedProvider("beta-crest", reply=MARKDOWN, interval_s=0.03),
        ]
    )
    client = arena.client()
    battle_id = client.new_battle("battle")
    response, events = client.send(battle_id, "Tell me about rivers")
    assert response.status_code == 200
    for side in ("a", "b"):
        htmls = _check_renders_follow_deltas(events, side)
        assert len(htmls) >= 2
        assert any("<h2>Rivers</h2>" in h and "<li>the Nile</li>" in h for h in htmls)
    assert events[-1].event == "end" and events[-1].data["can_vote"]
    assert b"alpha-sage" not in client.received and b"beta-crest" not in client.received


def test_a_hostile_streamed_answer_is_sanitized_in_every_frame(arena_server):
    arena = arena_server(
        [
            ScriptedProvider("alpha-sage", reply=HOSTILE, interval_s=0.02),
            ScriptedProvider("beta-crest", reply=HOSTILE, interval_s=0.02),
        ]
    )
    client = arena.client()
    battle_id = client.new_battle("battle")
    _, events = client.send(battle_id, "Hello")
    html_frames = [e for e in events if e.event in ("render", "done")]
    assert sum(e.event == "render" for e in html_frames) >= 2
    for event in html_frames:
        _assert_safe(event.data["html"])
    for side in ("a", "b"):
        _check_renders_follow_deltas(events, side)


def test_rendered_frames_of_a_leaking_answer_show_only_what_deltas_showed(arena_server):
    leaking = "## Who\n\nI am **beta-crest**, a model by nobody.\n\n- one\n- two\n- three\n"
    arena = arena_server(
        [
            ScriptedProvider("alpha-sage", reply=MARKDOWN, interval_s=0.02),
            ScriptedProvider("beta-crest", reply=leaking, interval_s=0.02),
        ]
    )
    client = arena.client()
    battle_id = client.new_battle("battle")
    _, events = client.send(battle_id, "Who are you?")
    for side in ("a", "b"):
        _check_renders_follow_deltas(events, side)
    leaks = [e for e in events if e.event == "leak"]
    assert len(leaks) == 1 and "beta-crest" not in leaks[0].data["message"]
    assert events[-1].data["identity_leaked"] is True


def test_vendored_katex_is_served_and_nothing_else(arena_server):
    arena = arena_server([ScriptedProvider("solo-model")])
    client = arena.client()
    js = client.get("/static/vendor/katex/katex.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "katex" in js.text[:400]
    font = client.get("/static/vendor/katex/fonts/KaTeX_Main-Regular.woff2")
    assert font.status_code == 200 and font.headers["content-type"] == "font/woff2"
    for path in (
        "/static/vendor/katex/LICENSE",  # not a served type
        "/static/vendor/katex/missing.js",
        "/static/vendor/%2e%2e/arena.js",  # outside the vendor folder
        "/static/vendor/..%2f..%2fpages.py",
    ):
        assert client.get(path).status_code == 404, path
    policy = client.get("/direct").headers["content-security-policy"]
    assert "font-src 'self'" in policy and "style-src 'self';" in policy


# ------------------------------------------------------------------ in a browser


CSP_LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.mark.browser
def test_the_page_renders_markdown_code_and_tex_as_the_answer_streams(arena_server, browser):
    arena = arena_server([ScriptedProvider("solo-model", reply=MARKDOWN, interval_s=0.06)])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=arena.url)
    context.add_init_script(CSP_LISTENER)
    page: Page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(arena.url + "/direct")
        page.locator("#prompt").fill("Tell me about rivers")
        page.locator("#prompt").press("Enter")
        # A heading and a list, rendered while the answer is still streaming.
        page.wait_for_function(
            """() => {
                 const m = document.querySelector('#log-a .msg-assistant.streaming');
                 return m && m.querySelector('.md h2') && m.querySelector('.md li'); }"""
        )
        expect(page.locator("#log-a .msg-assistant:not(.streaming)")).to_have_count(1)
        answer = page.locator("#log-a .msg-assistant")
        expect(answer.locator("h2")).to_have_text("Rivers")
        expect(answer.locator("li")).to_have_count(3)
        expect(answer.locator("pre.highlight code span.nb")).to_have_text("print")
        expect(answer.locator(".math-inline .katex")).to_have_count(1)
        expect(answer.locator(".math-display .katex-display")).to_have_count(1)
        copy = answer.get_by_role("button", name="Copy code")
        copy.click()
        expect(answer.get_by_role("button", name="Code copied")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == "print('hello')\n"
        assert page.evaluate("window.__csp") == []
        assert problems == []
    finally:
        context.close()
