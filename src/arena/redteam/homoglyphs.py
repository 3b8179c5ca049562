"""Folding of look-alike characters, so an answer that disguises a canary or a target phrase
with other scripts' letters reads as the plain ASCII it imitates.

Each fold is a many-to-one map applied alike to the answer and to what is looked for, so a
near miss (another letter, a word changed) stays a miss. The layers:

* Unicode NFKD: full-width forms, mathematical alphanumerics, ligatures, superscripts, circled
  digits, and accented letters (split into base letter + combining mark, the mark dropped).
* Unicode's confusables (UTS #39 ``confusables.txt``, shipped offline as JSON by the
  ``confusable-homoglyphs`` package): Cyrillic, Greek, Cherokee… letters that look like Latin.
* For canaries only, leetspeak: digits and a few symbols read as the letters they stand for.

Invisible characters (zero-width spaces and joiners, bidi controls, variation selectors) and
combining marks are dropped. Unicode tag characters (U+E0020–E007E, an invisible copy of ASCII)
are read as the ASCII they copy, since a model can leak a secret through them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

# Python's \w is letters and digits of any script; marks, punctuation, symbols, spaces and
# format characters are \W.
_NOT_LETTER_OR_DIGIT = re.compile(r"[\W_]+")
_ASCII_ALNUM = re.compile(r"[0-9a-z]+")
# UTS #39 skeletons send these ASCII characters to one prototype ("l" for I, 1, |; "o" for 0).
_ASCII_CONFUSABLES = {"I": "l", "1": "l", "|": "l", "0": "O"}
# Leetspeak, after case folding: every digit and i/l collapse into a letter class. Digits sit in
# the canary's alphabet, so the canary is folded the same way before it is looked for.
_LEET_LETTERS = str.maketrans("0123456789i", "olzeasbtbgl")
# Only symbols rarely written next to a word: "!", "|" or "+" (i, l, t) would let a canary's
# prefix followed by a table bar or an exclamation mark pass for the whole canary. For the same
# reason, symbol look-alikes of l, i and x (bars, "∣", "×") are left out.
_LEET_SYMBOLS = {"@": "a", "$": "s"}
# For ASCII text: letters and digits kept in lower case, the rest dropped.
_ASCII_SKELETON: dict[int, str | None] = {
    code: chr(code).lower() if chr(code).isalnum() else None for code in range(128)
}
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_NON_ASCII_SPLIT = re.compile(r"([^\x00-\x7f]+)")
_TAGS = range(0xE0020, 0xE007F)
# Planes with combining marks or format characters in Unicode 14-15 (BMP, SMP, SIP, SSP).
_SCANNED = (range(0x30000), range(0xE0000, 0xE1000))


@dataclass(frozen=True)
class FoldTables:
    """``str.translate`` tables built once from the confusables data."""

    letters: dict[int, str | None]  # non-ASCII letter/digit -> lower-case ASCII look-alike
    symbols: dict[int, str | None]  # as ``letters``, plus symbols that look like one ("∣")
    phrase: dict[int, str | None]  # non-ASCII look-alike -> ASCII; invisibles dropped


def _prototypes() -> dict[str, str]:
    """Non-ASCII character -> the printable ASCII it is confusable with (UTS #39)."""
    from confusable_homoglyphs.confusables import confusables_data

    found: dict[str, str] = {}
    for key, entries in confusables_data.items():
        source = key.replace("\u200e", "")  # right-to-left entries come wrapped in LRM marks
        if len(source) != 1 or source.isascii():
            continue
        compatible = unicodedata.normalize("NFKD", source)
        if compatible.isascii() and compatible.isalnum():  # "ⅿ" is "m", though it looks "rn"
            found[source] = compatible
            continue
        for entry in entries:
            target = entry["c"].replace("\u200e", "")
            if target.isascii() and target.isprintable() and not target.isspace():
                found[source] = "m" if target == "rn" else target  # UTS #39 spells m as rn
                break
    return found


@functools.cache
def fold_tables() -> FoldTables:
    letters: dict[int, str] = {}
    symbols: dict[int, str] = {}
    phrase: dict[int, str | None] = {}
    for source, target in _prototypes().items():
        # A capital that looks like "l" is a capital I (Cyrillic І, Greek Ι): read it so, so
        # that it still matches an "i" once case is folded.
        capital_i = target == "l" and unicodedata.category(source) == "Lu"
        phrase[ord(source)] = "I" if capital_i else target
        folded = target.casefold()
        if not _ASCII_ALNUM.fullmatch(folded):
            continue
        if unicodedata.category(source)[0] in "LN":
            letters[ord(source)] = folded
        elif folded.strip("lix"):
            symbols[ord(source)] = folded
    for block in _SCANNED:
        for code in block:
            if unicodedata.category(chr(code)) in ("Mn", "Me", "Cf"):
                phrase[code] = None
    for code in _TAGS:
        letters[code] = chr(code - 0xE0000).casefold()
    return FoldTables(letters, {**letters, **symbols}, phrase)


def plain_skeleton(text: str) -> str:
    """Letters and digits only, case-folded: spacing, punctuation and invisible marks fall away.

    Letters of other scripts stay as a ``_`` each (ASCII, so later ``str.translate`` calls keep
    their fast path): they split a canary rather than vanish from inside it.
    """
    if text.isascii():  # str.translate's fast path covers ASCII text only
        return text.translate(_ASCII_SKELETON)
    # Split into ASCII stretches (fast path) and non-ASCII ones (regex): one regex pass over a
    # whole answer would stop at every space.
    parts = _NON_ASCII_SPLIT.split(text.casefold())
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].translate(_ASCII_SKELETON)
    for i in range(1, len(parts), 2):
        parts[i] = "_" if _NOT_LETTER_OR_DIGIT.sub("", parts[i]) else ""
    return "".join(parts)


def _read_runs(text: str, read) -> str:
    """``read`` applied to each run of non-ASCII characters only: ``str.translate`` on a mixed
    text is many times slower than regex scans, and ASCII needs no look-alike table."""
    return text if text.isascii() else _NON_ASCII_RUN.sub(lambda run: read(run.group()), text)


def homoglyph_skeleton(text: str, *, with_symbols: bool = False) -> str:
    """``plain_skeleton`` after reading look-alike letters (and, optionally, symbols) as ASCII."""
    tables = fold_tables()
    table = tables.symbols if with_symbols else tables.letters

    def read(run: str) -> str:
        # Look-alikes are read before NFKD (which turns a lunate sigma into a final sigma), after
        # it (full-width and mathematical forms), and after case folding (a capital with no
        # look-alike whose small letter has one).
        run = unicodedata.normalize("NFKD", run.translate(table)).translate(table)
        return run.casefold().translate(table)

    if with_symbols:
        for symbol, letter in _LEET_SYMBOLS.items():
            text = text.replace(symbol, letter)
    return plain_skeleton(_read_runs(text, read))


def leet_fold(skeleton: str) -> str:
    """A skeleton with digits and i/l merged into letter classes (``5k1v3`` -> ``sklve``)."""
    return skeleton.translate(_LEET_LETTERS)


def fold_phrase_text(text: str, *, casefold: bool = False) -> str:
    """Text with look-alikes read as ASCII, keeping its spacing and punctuation, for phrases.

    With ``casefold``, case goes before UTS #39's ASCII confusions are applied, so a capital L
    is never taken for the ``l`` that UTS #39 reads a capital I as.
    """
    table = fold_tables().phrase
    text = _read_runs(
        text, lambda run: unicodedata.normalize("NFKD", run.translate(table)).translate(table)
    )
    if casefold:
        text = _read_runs(text.casefold(), lambda run: run.translate(table))
    for ascii_char, prototype in _ASCII_CONFUSABLES.items():
        text = text.replace(ascii_char, prototype)
    return text
