"""Person names for the personal-data scrubber: a gazetteer heuristic over Faker's name lists.

No maintained named-entity recogniser installs its model offline from PyPI (spaCy, Presidio,
Flair, GLiNER all download weights), so names are found from the first and last names that
Faker ships for twenty Latin-script locales, in two careful shapes only:

- a full name: a known first name, an optional middle initial, and a known last name, both
  capitalised ("Maria Garcia", "John Q. Smith");
- a known first or last name right after a cue that introduces a person ("my name is Anna",
  "Dear Mr Brown", "Regards, Peter").

A capitalised word alone ("Grace", "Young") is removed only where the same conversation
already named that person in one of those shapes: too many are ordinary words.
Names in other scripts are not found (stated in the dataset card).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache

NAME_LOCALES = (
    "en_US", "en_GB", "en_IE", "de_DE", "fr_FR", "es_ES", "es_MX", "it_IT", "pt_BR", "pt_PT",
    "nl_NL", "pl_PL", "sv_SE", "da_DK", "no_NO", "fi_FI", "cs_CZ", "tr_TR", "ro_RO", "hu_HU",
)  # fmt: skip

# Capitalised words in the lists that are far more often something else in prompts.
_NOT_NAME_WORDS = (
    "The This That These Those When What Where Which While Who Why How Then There Here "
    "And But For Not Can Will Shall May Might Must Should Would Could Also Just Only Even "
    "New Old Big Little Long Short Young Good Best Great Grand Saint Sir Dear Mister Miss "
    "King Queen Prince Princess Lord Lady Bishop Pope Earl Duke Major General Judge Doctor "
    "Page Lane Street Road Hill Park Field Wood Stone Bridge River Lake Rock Sun Star Sky "
    "Summer Winter Spring Autumn January February March April June July August October "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday Christmas Easter "
    "Python Java Ruby Rust Swift Julia Go Perl Dart Crystal Elixir Scala Kotlin Haskell "
    "Apple Amazon Oracle Windows Linux Chrome Excel Word Office Power Viking Data"
)
_NOT_NAMES = frozenset(_NOT_NAME_WORDS.split())

_UPPER = "".join(chr(c) for c in range(0x41, 0x250) if chr(c).isupper())
_LOWER = "".join(chr(c) for c in range(0x61, 0x250) if chr(c).islower())
_WORD = rf"[{_UPPER}][{_LOWER}]+(?:[-'’][{_UPPER}]?[{_LOWER}]+)?"
_CAPITALISED = re.compile(_WORD)
_INITIAL = re.compile(rf"\s[{_UPPER}]\.?\s")
_TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Sr|Sra|Sig|Signora)\.?\s"
# What comes right before a name that a cue introduces (searched at the end of a short
# window before each known name, so ordinary text costs nothing).
_CUE_BEFORE = re.compile(
    r"(?:(?i:\b(?:my name is|my name's|i am|i'm|call me|named|signed|dear|hi|hello|hey|"
    r"regards|sincerely|thanks|thank you|cheers|yours|attn|attention)[,:]?\s+)"
    rf"(?:{_TITLES})?|\b{_TITLES})$"
)
_CUE_WINDOW = 24


@dataclass(frozen=True)
class NameLists:
    first: frozenset[str]
    last: frozenset[str]

    @property
    def names(self) -> frozenset[str]:
        return self._names

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", self.first | self.last)


@cache
def name_lists(locales: tuple[str, ...] = NAME_LOCALES) -> NameLists:
    """First and last names from Faker's person providers (shipped with the package)."""
    first: set[str] = set()
    last: set[str] = set()
    for locale in locales:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attr in ("first_names", "first_names_male", "first_names_female"):
            first.update(getattr(provider, attr, ()) or ())
        for attr in ("last_names", "last_names_male", "last_names_female"):
            # "van der Veen" counts as "Veen": the capitalised last word is what text shows.
            last.update(n.split()[-1] for n in getattr(provider, attr, ()) or () if n.strip())
    keep = re.compile(rf"^{_WORD}$")
    return NameLists(
        frozenset(n for n in first if keep.match(n) and n not in _NOT_NAMES),
        frozenset(n for n in last if keep.match(n) and n not in _NOT_NAMES),
    )


def name_words(text: str, spans: Iterable[tuple[int, int]], lists: NameLists) -> set[str]:
    """The known first and last names inside found ``spans`` of ``text``."""
    words: set[str] = set()
    for start, end in spans:
        for m in _CAPITALISED.finditer(text, start, end):
            if m.group() in lists.first or m.group() in lists.last:
                words.add(m.group())
    return words


def _words(text: str, lists: NameLists, known: frozenset[str]) -> list[re.Match[str]]:
    """Known names among the capitalised words that stand alone (not inside an identifier,
    an address or a path). Other words are dropped first: most words are not names."""
    names = lists.names
    words = []
    for m in _CAPITALISED.finditer(text):
        word = m.group()
        if word not in names and word not in known:
            continue
        start, end = m.start(), m.end()
        if start and (text[start - 1].isalnum() or text[start - 1] in "_@./\\"):
            continue
        if end < len(text) and (text[end].isalnum() or text[end] in "_@"):
            continue
        if text[end : end + 1] in (".", "/") and text[end + 1 : end + 2].isalnum():
            continue
        words.append(m)
    return words


def _adjacent(text: str, left: re.Match[str], right: re.Match[str]) -> bool:
    gap = text[left.end() : right.start()]
    return (len(gap) == 1 and gap.isspace()) or _INITIAL.fullmatch(gap) is not None


def find_names(
    text: str, lists: NameLists, known: frozenset[str] = frozenset()
) -> Iterator[tuple[int, int]]:
    """Spans of person names in ``text``, in order. ``known``: words already found as
    names elsewhere in the same conversation ("Laura Smith" then "Laura" alone)."""
    words = _words(text, lists, known)
    i = 0
    while i < len(words):
        word = words[i]
        following = words[i + 1] if i + 1 < len(words) else None
        pair = following is not None and _adjacent(text, word, following)
        if pair and word.group() in lists.first and following.group() in lists.last:
            yield word.start(), following.end()
            i += 2
            continue
        name = word.group()
        if name in known:
            yield word.start(), word.end()
            i += 1
            continue
        if (name in lists.first or name in lists.last) and _CUE_BEFORE.search(
            text, max(0, word.start() - _CUE_WINDOW), word.start()
        ):
            end = following.end() if pair and following.group() in lists.last else word.end()
            yield word.start(), end
            i += 2 if end != word.end() else 1
            continue
        i += 1
