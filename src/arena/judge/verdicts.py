"""Reading a judge's verdict out of its free-text answer.

Four scales, named by what the judge prompt asks for:

- ``rating``: a 1–10 score, ``Rating: [[8]]`` / ``[[8.5]]`` (MT-Bench single grading);
- ``pair``: ``[[A]]``, ``[[B]]`` or ``[[C]]`` for a tie (MT-Bench pairwise);
- ``graded_pair``: ``[[A>>B]]``, ``[[A>B]]``, ``[[A=B]]``, ``[[B>A]]``, ``[[B>>A]]``
  (Arena-Hard; ``A<B`` style spellings are normalized);
- ``yes_no``: ``[[YES]]`` or ``[[NO]]`` (red-team goals: was the goal achieved?).

Judges explain before they decide and sometimes quote the format in passing, so the *last*
well-formed verdict counts. Markdown emphasis, code ticks, escaped brackets and stray spaces
around the verdict are tolerated. Anything else is ``None`` — unparsable, never guessed.
"""

from __future__ import annotations

import re
from enum import StrEnum


class Scale(StrEnum):
    RATING = "rating"
    PAIR = "pair"
    GRADED_PAIR = "graded_pair"
    YES_NO = "yes_no"


GRADED_LEVELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")

_NUMBER = r"(\d{1,2}(?:\.\d+)?)"
_RATING = re.compile(r"\[\[\s*" + _NUMBER + r"\s*(?:/\s*10\s*)?\]\]")
# Without double brackets, only a number right after the word rating/score counts.
_RATING_FALLBACK = re.compile(
    r"(?:rating|score)\s*[:：=]?\s*\[\s*" + _NUMBER + r"\s*(?:/\s*10\s*)?\]", re.IGNORECASE
)
_PAIR = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
_GRADED = re.compile(r"\[\[\s*([AB])\s*(>>|<<|>|<|=)\s*([AB])\s*\]\]", re.IGNORECASE)
_YES_NO = re.compile(r"\[\[\s*(YES|NO)\s*\]\]", re.IGNORECASE)
# A verdict written on a ``Verdict:`` line outranks one mentioned elsewhere (a judge may quote
# a bracketed token from the text it judged); without brackets only that line counts.
_YES_NO_LABELLED = re.compile(
    r"^[\s>#-]*verdict\s*[:：=]\s*(?:\[\[\s*)?(YES|NO)\b(?:\s*\]\])?[\s.!]*$",
    re.IGNORECASE | re.MULTILINE,
)
_NOISE = re.compile(r"[*`]|\\(?=[\[\]<>=_*])")


def _clean(text: str) -> str:
    return _NOISE.sub("", text)


def parse_rating(text: str, *, low: float = 1.0, high: float = 10.0) -> float | None:
    """The last well-formed score in [low, high], or None."""
    cleaned = _clean(text)
    for pattern in (_RATING, _RATING_FALLBACK):
        values = [float(m.group(1)) for m in pattern.finditer(cleaned)]
        values = [v for v in values if low <= v <= high]
        if values:
            return values[-1]
    return None


def parse_pair(text: str) -> str | None:
    """``"A"``, ``"B"`` or ``"tie"`` from the last ``[[A]]``/``[[B]]``/``[[C]]``, or None."""
    matches = _PAIR.findall(_clean(text))
    if not matches:
        return None
    last = matches[-1].upper()
    return "tie" if last in ("C", "TIE") else last


def parse_graded_pair(text: str) -> str | None:
    """One of ``GRADED_LEVELS`` from the last well-formed ``[[X op Y]]``, or None."""
    for left, op, right in reversed(_GRADED.findall(_clean(text))):
        level = _normalize_graded(left.upper(), op, right.upper())
        if level is not None:
            return level
    return None


def _normalize_graded(left: str, op: str, right: str) -> str | None:
    if left == right:
        return None
    if op == "=":
        return "A=B"
    if op in ("<", "<<"):
        left, right, op = right, left, op.replace("<", ">")
    return f"{left}{op}{right}"


def parse_yes_no(text: str) -> str | None:
    """``"yes"`` or ``"no"``: the last ``Verdict:`` line if there is one, else the last
    ``[[YES]]``/``[[NO]]``; None when neither appears."""
    cleaned = _clean(text)
    labelled = _YES_NO_LABELLED.findall(cleaned)
    if labelled:
        return labelled[-1].lower()
    bare = _YES_NO.findall(cleaned)
    return bare[-1].lower() if bare else None


def parse_verdict(scale: Scale, text: str) -> float | str | None:
    if scale is Scale.RATING:
        return parse_rating(text)
    if scale is Scale.PAIR:
        return parse_pair(text)
    if scale is Scale.YES_NO:
        return parse_yes_no(text)
    return parse_graded_pair(text)
