"""Answer-side style statistics: markdown element counts and an approximate token count.

``markdown_counts`` parses the text with markdown-it-py (CommonMark) and counts the
elements the style-controlled leaderboard uses, in the shape of the public ``conv_metadata``
(``header_count``, ``list_count``, ``bold_count``). Parsing instead of pattern matching means
a ``# comment`` inside a fenced code block is not a header and ``2 ** 3`` is not bold.

``approx_token_count`` is used only where no upstream token usage was recorded (real
tokenizers cannot be downloaded here). It is deterministic and documented below.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

HEADER_LEVELS = ("h1", "h2", "h3", "h4", "h5", "h6")


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def empty_counts() -> dict[str, dict[str, int]]:
    """All-zero counts in the public ``conv_metadata`` shape."""
    return {
        "header_count": dict.fromkeys(HEADER_LEVELS, 0),
        "list_count": {"ordered": 0, "unordered": 0},
        "bold_count": {"**": 0, "__": 0},
    }


def markdown_counts(text: str) -> dict[str, dict[str, int]]:
    """Count headers (per level), list items (ordered/unordered) and bold spans (per marker).

    Headers include setext (underlined) headings; list items are counted at every nesting
    depth; bold is ``strong`` emphasis keyed by its marker (``**`` or ``__``). Code blocks,
    inline code and escaped characters contribute nothing.
    """
    counts = empty_counts()
    if not text:
        return counts
    list_stack: list[str] = []
    for token in _parser().parse(text):
        kind = token.type
        if kind == "heading_open" and token.tag in counts["header_count"]:
            counts["header_count"][token.tag] += 1
        elif kind == "ordered_list_open":
            list_stack.append("ordered")
        elif kind == "bullet_list_open":
            list_stack.append("unordered")
        elif kind in ("ordered_list_close", "bullet_list_close"):
            if list_stack:
                list_stack.pop()
        elif kind == "list_item_open" and list_stack:
            counts["list_count"][list_stack[-1]] += 1
        elif kind == "inline" and token.children:
            for child in token.children:
                if child.type == "strong_open" and child.markup in counts["bold_count"]:
                    counts["bold_count"][child.markup] += 1
    return counts


def has_code(text: str) -> bool:
    """Whether the text holds a code block (fenced or indented), found by parsing."""
    if not text:
        return False
    return any(t.type in ("fence", "code_block") for t in _parser().parse(text))


# Pieces a byte-pair tokenizer tends to keep whole or split predictably:
#   - a run of letters (any script except the CJK/kana/hangul blocks),
#   - a run of digits,
#   - one CJK ideograph, kana or hangul syllable,
#   - a run of punctuation and symbols (``**``, ``();``, ``...``),
#   - a line break run.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_PIECES = re.compile(
    rf"(?P<cjk>[{_CJK}])"
    rf"|(?P<word>[^\W\d_{_CJK}]+)"
    r"|(?P<digits>\d+)"
    r"|(?P<newlines>\n+)"
    r"|(?P<punct>[^\w\s]+)"
)
# Common English words are one token up to about this many characters; longer runs are
# split into pieces of roughly this size.
_WORD_CHARS_PER_TOKEN = 8
# Tokenizers of the GPT-4 family group digits in threes.
_DIGITS_PER_TOKEN = 3
# Punctuation runs (``();``, ``**``, ``-->``) merge into tokens of about this length.
_PUNCT_CHARS_PER_TOKEN = 2


def approx_token_count(text: str) -> int:
    """Approximate the number of tokens a GPT-style BPE tokenizer would produce.

    Deterministic rule (no model files needed): the text is cut into pieces and each piece
    costs ``ceil(len / n)`` tokens, where ``n`` is 8 for a run of letters, 3 for a run of
    digits, 2 for a run of punctuation or symbols and 1 for each CJK character,
    kana or hangul syllable; a run of line breaks costs one token and other whitespace is
    free (BPE folds a leading space into the next word). For English prose this lands near
    the usual "about 0.75 words per token"; it is an estimate for style features and
    length filters, never for billing.
    """
    if not text:
        return 0
    total = 0
    for match in _PIECES.finditer(text):
        group = match.lastgroup
        length = match.end() - match.start()
        if group == "cjk" or group == "newlines":
            total += 1
        elif group == "word":
            total += math.ceil(length / _WORD_CHARS_PER_TOKEN)
        elif group == "digits":
            total += math.ceil(length / _DIGITS_PER_TOKEN)
        else:
            total += math.ceil(length / _PUNCT_CHARS_PER_TOKEN)
    return total
