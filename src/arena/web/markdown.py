"""Model answers as safe HTML: markdown-it-py renders, Pygments highlights code, nh3 sanitizes.

TeX is kept as escaped text in ``math-inline``/``math-display`` spans (``markdown_math``) for
the page to typeset. The same function renders an answer while it streams (``turn_frames``),
so a half-written answer is sanitized exactly like a finished one.

Raw HTML in an answer is never passed through: markdown-it escapes it (``html`` off) and nh3
then strips anything outside a short allow-list, so a ``<script>`` or ``onerror=`` written by
a model shows up as text and never runs.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from arena.web.markdown_math import math_plugin

HIGHLIGHT_CLASS = "highlight"

_ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul", "div",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "div": {"class"},
    "pre": {"class"},
    "ol": {"start"},
}
_URL_SCHEMES = {"http", "https", "mailto"}


def _highlight(code: str, lang: str, _attrs: str) -> str:
    name = (lang or "").strip().split()[0] if lang else ""
    if not name:
        return ""  # markdown-it escapes and wraps it itself
    try:
        lexer = get_lexer_by_name(name)
    except ClassNotFound:
        return ""
    body = highlight(code, lexer, _formatter())
    return f'<pre class="{HIGHLIGHT_CLASS}"><code class="language-{name}">{body}</code></pre>'


@lru_cache(maxsize=1)
def _formatter() -> HtmlFormatter:
    return HtmlFormatter(nowrap=True)


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": False, "highlight": _highlight})
        .enable(["table", "strikethrough"])
        .use(math_plugin)
    )


def render_markdown(text: str) -> str:
    """Sanitized HTML for a model's markdown answer."""
    raw = _renderer().render(text)
    return nh3.clean(
        raw,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


@lru_cache(maxsize=1)
def highlight_css() -> str:
    """The Pygments stylesheet for the classes ``render_markdown`` emits (light + dark)."""
    light = HtmlFormatter(style="default").get_style_defs(f".{HIGHLIGHT_CLASS}")
    dark = HtmlFormatter(style="monokai").get_style_defs(f".{HIGHLIGHT_CLASS}")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
