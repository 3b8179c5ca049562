"""Person names in scripts where a capital letter cannot mark them: Hebrew, Arabic, Devanagari
(Hindi), Thai, Chinese, Japanese and Korean, from the names Faker ships for those locales.

Without letter case many listed names are also ordinary words (Arabic "نور" is "light",
Chinese "高" + "强" is "high strength"), so only the strictest shapes count:

- Hebrew, Arabic, Hindi (words between spaces): a known first name followed by a known last
  name, whole words one space apart, or a known name right after a cue written in that
  language ("שמי", "اسمي", "मेरा नाम", "السيد", "श्री");
- Thai (spaces between phrases and between first and last name): a known first name, alone or
  right after a title or "ชื่อ" ("นาย", "คุณ", "ผมชื่อ"), a space, and a known last name; or a
  known first name right after such a title;
- Chinese, Japanese, Korean: only a known surname + given name after a cue or before an
  honorific (``scrub_names_cjk``).

This module gathers them all behind ``find_script_names``.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from arena.pipeline.scrub_names import faker_names
from arena.pipeline.scrub_names_cjk import (
    CJK_LANGUAGES,
    HAN,
    HANGUL,
    KANA,
    CJKLists,
    alternation,
    cjk_lists,
    cjk_names,
)

# Any character of the scripts below: ordinary English text costs one search.
_ANY = re.compile(f"[\u0590-\u06ff\u0900-\u097f\u0e00-\u0e7f{HAN}{KANA}{HANGUL}]")
_CUE_WINDOW = 24
_NIQQUD = "\u0591-\u05c7"


# ---------------------------------------------------------------- words between spaces


@dataclass(frozen=True)
class SpacedScript:
    """A script written with spaces between words: Hebrew, Arabic, Devanagari."""

    name: str
    locales: tuple[str, ...]
    letters: str  # a character class (without brackets) of the script's letters and marks
    cues: tuple[str, ...]  # phrases right before a name: "my name is", titles, "dear"
    marks: str = ""  # vowel signs written only sometimes (harakat, niqqud): ignored


SPACED_SCRIPTS = (
    SpacedScript(
        "Hebrew",
        ("he_IL",),
        "\u05d0-\u05ea\u0591-\u05c7\u05f0-\u05f2",
        ("שמי", "קוראים לי", "השם שלי", "שמי הוא", "שמי היא", "לכבוד", "בברכה", "מר",
         "גברת", "גב'", "ד\"ר", "שלום"),
        _NIQQUD,
    ),
    SpacedScript(
        "Arabic",
        ("ar_AA", "ar_SA", "ar_PS", "ar_DZ"),
        "\u0621-\u063a\u0640-\u065f\u0670-\u06d3",
        ("اسمي", "إسمي", "يدعى", "تدعى", "أدعى", "عزيزي", "عزيزتي", "السيد", "السيدة",
         "الآنسة", "الأستاذ", "الأستاذة", "الدكتور", "الدكتورة", "المهندس", "المهندسة",
         "مع تحياتي", "مرحبا"),
        "\u064b-\u065f\u0670\u0640",
    ),
    SpacedScript(
        "Devanagari",
        ("hi_IN",),
        "\u0900-\u0963\u0970-\u097f\u200c\u200d",
        ("मेरा नाम", "मेरा नाम है", "श्री", "श्रीमती", "श्रीमान", "सुश्री", "कुमारी",
         "प्रिय", "डॉ.", "डॉ", "नमस्ते", "भवदीय"),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class SpacedLists:
    script: SpacedScript
    word: re.Pattern[str]
    first: frozenset[str]  # keys (``_key``); a name of several words joined by one space
    last: frozenset[str]
    heads: frozenset[str]  # the first word of every listed name: other words are skipped
    vocabulary: frozenset[str]  # every word of every listed name
    longest: int  # the most words in one listed name
    cue: re.Pattern[str]
    table: dict[int, str | None]  # for ``_key``
    changes: re.Pattern[str]  # a character that ``table`` changes
    present: re.Pattern[str]  # a letter of the script


def _key_table(marks: str) -> dict[int, str | None]:
    """Vowel signs that text writes only sometimes go, one kind of alef and of apostrophe
    stays (text writes "احمد" for "أحمد")."""
    table: dict[int, str | None] = {ord(c): "\u0627" for c in "أإآ"}
    table |= {ord("\u05f3"): "'", ord("\u2019"): "'"}
    for lo, _, hi in re.findall(r"(.)(-(.))?", marks):
        table |= dict.fromkeys(range(ord(lo), ord(hi or lo) + 1))
    return table


def _key(word: str, table: dict[int, str | None], changes: re.Pattern[str]) -> str:
    return word.translate(table) if changes.search(word) else word


def _spaced_lists(script: SpacedScript) -> SpacedLists:
    first = set().union(*(faker_names(locale, "first") for locale in script.locales))
    last = set().union(*(faker_names(locale, "last") for locale in script.locales))
    table = _key_table(script.marks)
    changes = re.compile("[" + "".join(re.escape(chr(c)) for c in table) + "]")
    # Both the list's spelling and its NFC form: Devanagari's nukta letters ("ज़") differ.
    first_keys, last_keys = (
        frozenset(
            " ".join(w.translate(table) for w in form.split())
            for n in names
            for form in (n, unicodedata.normalize("NFC", n))
        )
        for names in (first, last)
    )
    letters = script.letters
    # Hebrew ends names with a geresh too ("ריתאג'"); elsewhere that is a closing quote.
    tail = "*" if script.name == "Hebrew" else "+"
    return SpacedLists(
        script,
        re.compile(f"[{letters}]+(?:['\u05f3\u2019][{letters}]{tail})*"),
        first_keys,
        last_keys,
        frozenset(n.split()[0] for n in first_keys | last_keys),
        frozenset(w for n in first_keys | last_keys for w in n.split()),
        max(len(n.split()) for n in first_keys | last_keys),
        # The lookbehind sees before the window, so a cue is a whole word.
        re.compile(f"(?<![{letters}])(?:{alternation(script.cues)})[\\s,:،-]*$"),
        table,
        changes,
        re.compile(f"[{letters}]"),
    )


def _listed(
    text: str, words: list[tuple[int, int, str]], i: int, names: frozenset[str], longest: int
) -> int:
    """How many words from ``i`` on, one space apart, make a listed name (0: none)."""
    for count in range(min(longest, len(words) - i), 0, -1):
        run = words[i : i + count]
        spaced = all(_one_space(text, a[1], b[0]) for a, b in itertools.pairwise(run))
        if spaced and " ".join(w[2] for w in run) in names:
            return count
    return 0


def _one_space(text: str, end: int, start: int) -> bool:
    return start - end == 1 and text[end].isspace()


_HYPHENS = "-\u05be"  # and the Hebrew maqaf


def _spaced_names(text: str, lists: SpacedLists) -> Iterator[tuple[int, int]]:
    """Found names, widened over words joined to them by a hyphen ("שי-לי", "כהן-לוי")."""
    letter = lists.present
    for start, end in _spaced_spans(text, lists):
        while start >= 2 and text[start - 1] in _HYPHENS and letter.match(text, start - 2):
            start -= 1
            while start > 0 and letter.match(text, start - 1):
                start -= 1
        while end + 1 < len(text) and text[end] in _HYPHENS and letter.match(text, end + 1):
            end += 1
            while end < len(text) and letter.match(text, end):
                end += 1
        yield start, end


def _spaced_spans(text: str, lists: SpacedLists) -> Iterator[tuple[int, int]]:
    table, changes, vocabulary = lists.table, lists.changes, lists.vocabulary
    # Words of no listed name are left out: the gap test then fails across them.
    words = [
        (m.start(), m.end(), key)
        for m in lists.word.finditer(text)
        if (key := _key(m.group(), table, changes)) in vocabulary
    ]
    i = 0
    while i < len(words):
        if words[i][2] not in lists.heads:
            i += 1
            continue
        first = _listed(text, words, i, lists.first, lists.longest)
        after = i + first
        last = 0
        if first and after < len(words) and _one_space(text, words[after - 1][1], words[after][0]):
            last = _listed(text, words, after, lists.last, lists.longest)
        if first and last:
            yield words[i][0], words[after + last - 1][1]
            i = after + last
            continue
        start = words[i][0]
        if lists.cue.search(text, max(0, start - _CUE_WINDOW), start):
            count = first or _listed(text, words, i, lists.last, lists.longest)
            if count:
                i += count
                if i < len(words) and _one_space(text, words[i - 1][1], words[i][0]):
                    i += _listed(text, words, i, lists.last, lists.longest)
                yield start, words[i - 1][1]
                continue
        i += 1


# ---------------------------------------------------------------- Thai

# Titles are written with dots ("น.ส.สมหญิง"): they stay on the word they introduce.
_THAI_WORD = re.compile("(?:[\u0e01-\u0e3a\u0e40-\u0e4e]+\\.)*[\u0e01-\u0e3a\u0e40-\u0e4e]+")
_THAI_LETTER = re.compile("[\u0e01-\u0e4e]")
_THAI_CUES = ("ชื่อ", "คุณ", "นาย", "นาง", "นางสาว", "น.ส.", "ด.ช.", "ด.ญ.", "เด็กหญิง", "เด็กชาย")
_THAI_CUE = re.compile(alternation(_THAI_CUES))


@dataclass(frozen=True)
class ThaiLists:
    first: frozenset[str]
    last: frozenset[str]
    lengths: tuple[int, ...]  # lengths of first names, longest first


def _thai_lists() -> ThaiLists:
    first = faker_names("th_TH", "first")
    lengths = tuple(sorted({len(n) for n in first}, reverse=True))
    return ThaiLists(first, faker_names("th_TH", "last"), lengths)


def _thai_first(word: str, lists: ThaiLists) -> tuple[int, bool] | None:
    """Where a known first name starts in ``word`` (a whole word, or one right after a title
    or "ชื่อ" written together with it), and whether a title or "ชื่อ" came before it."""
    if word in lists.first:
        return 0, False
    if not _THAI_CUE.search(word):
        return None
    for length in lists.lengths:
        cued = length < len(word) and word[:-length].endswith(_THAI_CUES)
        if cued and word[-length:] in lists.first:
            return len(word) - length, True
    return None


def _thai_names(text: str, lists: ThaiLists) -> Iterator[tuple[int, int]]:
    words = list(_THAI_WORD.finditer(text))
    i = 0
    while i < len(words):
        found = _thai_first(words[i].group(), lists)
        if found is None:
            i += 1
            continue
        offset, cued = found
        start = words[i].start() + offset
        following = words[i + 1] if i + 1 < len(words) else None
        if (
            following is not None
            and following.group() in lists.last
            and _one_space(text, words[i].end(), following.start())
        ):
            yield start, following.end()
            i += 2
            continue
        if cued:
            yield start, words[i].end()
        i += 1


# ---------------------------------------------------------------- all of them


@dataclass(frozen=True)
class ScriptNameLists:
    spaced: tuple[SpacedLists, ...]
    thai: ThaiLists
    cjk: tuple[CJKLists, ...]


@cache
def script_name_lists() -> ScriptNameLists:
    """Faker's name lists of every script this module reads (loaded once)."""
    return ScriptNameLists(
        tuple(_spaced_lists(s) for s in SPACED_SCRIPTS),
        _thai_lists(),
        tuple(cjk_lists(language) for language in CJK_LANGUAGES),
    )


def find_script_names(text: str, lists: ScriptNameLists) -> Iterator[tuple[int, int]]:
    """Spans of person names written in Hebrew, Arabic, Devanagari, Thai or CJK, in order;
    overlapping finds are merged."""
    if text.isascii() or not _ANY.search(text):  # isascii: a flag Python keeps, no scan
        return
    spans: list[tuple[int, int]] = []
    # One fast search per script first: scanning text for words of an absent script is not.
    for spaced in lists.spaced:
        if spaced.present.search(text):
            spans.extend(_spaced_names(text, spaced))
    if _THAI_LETTER.search(text):
        spans.extend(_thai_names(text, lists.thai))
    for cjk in lists.cjk:
        if cjk.present.search(text):
            spans.extend(cjk_names(text, cjk))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    yield from merged
