"""Stable codes for the leaderboard's English text, so that the page can word it in the
reader's language while the JSON API keeps its English.

The rating code writes its warnings as English sentences into the artifacts; ``warning_code``
recognises the known ones and lifts their numbers and names out as parameters
(``leaderboard.js`` words each code). A warning it does not know keeps ``code`` null, and the
page shows the English sentence. Language categories are named in English ("language:Spanish");
``category_language`` gives the language's code, which the browser names in its own language.
The charts, drawn on the server, get their words from the request's catalog (``chart_words``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any, Protocol

from babel.core import Locale
from babel.support import NullTranslations

from arena.leaderboard.filters import LANGUAGE_PREFIX
from arena.web.leaderboard_svg import ChartWords

_NUMBER = r"([0-9][0-9.e+-]*)"
# (code, pattern, parameter names): the groups of each pattern in order.
WARNING_PATTERNS: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    (
        "preliminary",
        re.compile(
            rf"{_NUMBER} model\(s\) have fewer than {_NUMBER} battles: listed as preliminary, "
            r"after the ranked models, without a rank"
        ),
        ("n", "min_battles"),
    ),
    (
        "disconnected",
        re.compile(
            rf"comparison graph is disconnected \({_NUMBER} parts\); ratings are only comparable "
            r"within a part, each part is centred at the initial rating and ranked on its own"
        ),
        ("parts",),
    ),
    (
        "no_finite_optimum",
        re.compile(
            r"no finite maximum-likelihood ratings exist: within a connected part some group "
            r"of models never lost \(or never won\) against the rest"
            r"(?: \((?:never lost: (.*?))?(?:; )?(?:never won: (.*?))?\))?"
            rf"; fitted with a ridge of {_NUMBER} so they stay finite, and their interval is "
            r"unbounded on the side the data leave open"
        ),
        ("never_lost", "never_won", "ridge"),
    ),
    (
        "ties_only",
        re.compile(
            rf"{_NUMBER} model\(s\) have only tied battles; their intervals are model-based "
            r"\(inverse Fisher information\), since the data show no spread"
        ),
        ("n",),
    ),
    (
        "not_converged",
        re.compile(rf"Newton stopped after {_NUMBER} iterations \(max \|gradient\| (\S+)\)"),
        ("iterations", "gradient"),
    ),
    (
        "bootstrap_failed",
        re.compile(rf"{_NUMBER} of {_NUMBER} bootstrap rounds did not converge"),
        ("n", "rounds"),
    ),
    (
        "bootstrap_prior",
        re.compile(
            rf"{_NUMBER} of {_NUMBER} bootstrap rounds had no finite optimum on their own "
            rf"\(too few battles\) and were fitted with a prior of precision {_NUMBER} centred "
            r"at the full-data ratings"
        ),
        ("n", "rounds", "precision"),
    ),
    (
        "style_collinear",
        re.compile(r"style features are collinear; their split of the effect is arbitrary"),
        (),
    ),
    (
        "feature_constant",
        re.compile(r"feature '([^']+)' is constant in these battles; left out of the fit"),
        ("feature",),
    ),
)


def _param(value: str | None) -> Any:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "e" not in value else number


def warning_code(text: str) -> dict[str, Any]:
    """``{"code": ..., "params": {...}}`` of one board warning (``code`` None: unknown)."""
    for code, pattern, names in WARNING_PATTERNS:
        found = pattern.fullmatch(text.strip())
        if found:
            params = {
                name: _param(value) for name, value in zip(names, found.groups(), strict=True)
            }
            return {"code": code, "params": params}
    return {"code": None, "params": {}}


@cache
def _codes_by_english_name() -> dict[str, str]:
    names = Locale.parse("en").languages
    found: dict[str, str] = {}
    # Short codes first: "Spanish" is "es", not a regional or historical variant.
    for code in sorted(names, key=lambda c: (len(c), c)):
        found.setdefault(names[code].lower(), code)
    return found


def category_language(name: str) -> str | None:
    """The language code (``es``) of a language category (``language:Spanish``), if known."""
    if not name.startswith(LANGUAGE_PREFIX):
        return None
    return _codes_by_english_name().get(name[len(LANGUAGE_PREFIX) :].strip().lower())


ENGLISH = NullTranslations()


class Words(Protocol):
    """What the figures need of a catalog (Babel's ``Translations``)."""

    def gettext(self, message: str) -> str: ...

    def ngettext(self, singular: str, plural: str, n: int) -> str: ...


def chart_words(tr: Words) -> ChartWords:
    """The words drawn inside the charts, in ``tr``'s language."""
    _ = tr.gettext
    return ChartWords(
        # Translators: a model with too few battles to be ranked (inside a chart).
        preliminary=_("preliminary"),
        rank=_("rank %(rank)s"),
        interval=_("%(low)s to %(high)s"),
        # Translators: the legend of a heatmap's colours.
        scale=_("scale"),
        rating=_("Rating"),
        # Translators: a point of the ratings-over-time chart, e.g. "1210.5 at 2026-03".
        point=_("%(value)s at %(x)s"),
    )
