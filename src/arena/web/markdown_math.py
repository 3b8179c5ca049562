"""TeX in model answers, kept whole through markdown: ``$...$``, ``$$...$$``, ``\\(...\\)`` and
``\\[...\\]`` become escaped ``<span class="math-inline|math-display">`` elements that the
page typesets with KaTeX.

Without this rule markdown would eat the TeX first (``\\(`` is an escaped ``(``, ``a_1 b_1``
turns to emphasis). An unclosed delimiter (an answer still streaming) stays plain text until
its closing half arrives.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_inline import StateInline

INLINE_CLASS = "math-inline"
DISPLAY_CLASS = "math-display"

# (opening, closing, display) in the order they are tried: "$$" before "$".
_DELIMITERS = (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False), ("$", "$", False))


def _closing(src: str, start: int, end: int, close: str, single_dollar: bool) -> int:
    """Where ``close`` ends the formula that begins at ``start``, or -1."""
    pos = start
    while True:
        found = src.find(close, pos, end)
        if found < 0:
            return -1
        if src[found - 1] == "\\":  # an escaped delimiter ("\$") is part of the formula
            pos = found + 1
            continue
        if single_dollar:
            # "$5 and $10" is money, not math: no space inside the delimiters, no digit after.
            after = src[found + 1] if found + 1 < end else ""
            if src[found - 1].isspace() or after.isdigit():
                pos = found + 1
                continue
        return found


def _math(state: StateInline, silent: bool) -> bool:
    src, pos, end = state.src, state.pos, state.posMax
    for opening, close, display in _DELIMITERS:
        if not src.startswith(opening, pos):
            continue
        start = pos + len(opening)
        if start >= end:
            return False
        single_dollar = opening == "$"
        if single_dollar and src[start].isspace():
            return False
        found = _closing(src, start, end, close, single_dollar)
        if found < 0 or found == start:
            return False
        if not silent:
            token = state.push("math_display" if display else "math_inline", "", 0)
            token.content = src[start:found].strip()
            token.markup = opening
        state.pos = found + len(close)
        return True
    return False


def _render_inline(_self, tokens, idx, _options, _env) -> str:  # type: ignore[no-untyped-def]
    return f'<span class="{INLINE_CLASS}">{escapeHtml(tokens[idx].content)}</span>'


def _render_display(_self, tokens, idx, _options, _env) -> str:  # type: ignore[no-untyped-def]
    return f'<span class="{DISPLAY_CLASS}">{escapeHtml(tokens[idx].content)}</span>'


def math_plugin(md: MarkdownIt) -> None:
    """Add the TeX rule; it runs before ``escape`` so that ``\\(`` and ``\\[`` reach it."""
    md.inline.ruler.before("escape", "math", _math)
    md.add_render_rule("math_inline", _render_inline)
    md.add_render_rule("math_display", _render_display)
