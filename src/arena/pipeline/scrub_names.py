"""Person names for the personal-data scrubber: a gazetteer heuristic over Faker's name lists.

No maintained named-entity recogniser installs its model offline from PyPI (spaCy, Presidio,
Flair, GLiNER all download weights; natasha ships its weights but has had no release since
2023), so names are found from the first, middle (patronymic) and last names that Faker ships
for twenty Latin-script locales and for Russian, Ukrainian, Bulgarian (Cyrillic) and Greek,
all scripts with letter case, in two careful shapes only:

- a full name: a known first name, an optional middle initial, and a known last name, both
  capitalised ("Maria Garcia", "John Q. Smith"); in Cyrillic also first name + patronymic
  ("Иван Петрович [Сидоров]") and last name first ("Сидоров Иван [Петрович]");
- a known first or last name right after a cue that introduces a person ("my name is Anna",
  "Dear Mr Brown", "Regards, Peter", "меня зовут Анна", "με λένε Άννα").

A capitalised word alone ("Grace", "Young") is removed only where the same conversation
already named that person in one of those shapes: too many are ordinary words.
Scripts without letter case and CJK are in ``scrub_names_scripts``.
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
    "ru_RU", "uk_UA", "bg_BG", "el_GR",
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
# The same in Cyrillic: in Faker's ru_RU and bg_BG lists, yet nearly always a noun in text,
# and a greeting cue puts them right after "Привет"/"Hello" ("Привет, Мир!" is "hello,
# world"). Names that are also words but common as names stay (Вера, Надежда, Любовь, Роза,
# Лилия, Лев): "Меня зовут Вера" must go. Greek needs no such list: its "world" (Κόσμε) is
# no listed name, and its listed word-names (Ειρήνη, Ελπίδα, Ζωή, Σοφία) are common names.
_NOT_NAME_WORDS_CYRILLIC = (
    "Мир Сила Луна Бог Богиня Герой Чудо Правда Океан Агент Рис Лимон Вино Ягода"
)
NOT_NAMES = frozenset(_NOT_NAME_WORDS.split()) | frozenset(_NOT_NAME_WORDS_CYRILLIC.split())

# Latin (with its extensions), Greek and Cyrillic: the scripts whose capitals mark names.
_CASED = (*range(0x41, 0x250), *range(0x370, 0x400), *range(0x400, 0x530))
_UPPER = "".join(chr(c) for c in _CASED if chr(c).isupper())
_LOWER = "".join(chr(c) for c in _CASED if chr(c).islower())
# Ukrainian writes an apostrophe (ʼ) inside names: "Вʼячеслав", "Демʼянюк".
_WORD = rf"[{_UPPER}][ʼ'’]?[{_LOWER}]+(?:[-'’ʼ][{_UPPER}]?[{_LOWER}]+)?"
_CAPITALISED = re.compile(_WORD)
_INITIAL = re.compile(rf"\s[{_UPPER}]\.?\s")
_TITLES = (
    r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Herr|Frau|Mme|Mlle|Sr|Sra|Sig|Signora|"
    r"г-н|г-жа|господин|госпожа|пан|пані|κ|κύριε|κυρία|κύριος)\.?\s"
)
# What comes right before a name that a cue introduces (searched at the end of a short
# window before each known name, so ordinary text costs nothing).
_CUE_BEFORE = re.compile(
    r"(?:(?i:\b(?:my name is|my name's|i am|i'm|call me|named|signed|dear|hi|hello|hey|"
    r"regards|sincerely|thanks|thank you|cheers|yours|attn|attention|"
    # Russian, Ukrainian, Bulgarian, Greek: "my name is", "dear", "regards", "hello".
    r"меня зовут|моё имя|мое имя|зовут|уважаемый|уважаемая|дорогой|дорогая|с уважением|"
    r"привет|здравствуйте|мене звати|мене звуть|моє ім['’]я|шановний|шановна|з повагою|"
    r"привіт|вітаю|казвам се|името ми е|уважаеми|уважаема|здравей|здравейте|поздрави|"
    r"с уважение|με λένε|ονομάζομαι|το όνομά μου είναι|αγαπητέ|αγαπητή|με εκτίμηση|"
    r"γεια σου)[,:]?\s+)"
    rf"(?:{_TITLES})?|\b{_TITLES})$"
)
_CUE_WINDOW = 24


@dataclass(frozen=True)
class NameLists:
    first: frozenset[str]
    last: frozenset[str]
    middle: frozenset[str] = frozenset()  # patronymics ("Петрович"), Cyrillic only

    @property
    def names(self) -> frozenset[str]:
        return self._names

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", self.first | self.last | self.middle)


@cache
def faker_names(locale: str, kind: str) -> frozenset[str]:
    """Faker's ``kind`` ("first", "middle" or "last") names for ``locale``, its male and
    female lists included: every name list of the scrubber starts here."""
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    names: set[str] = set()
    for attr in (f"{kind}_names", f"{kind}_names_male", f"{kind}_names_female"):
        names.update(getattr(provider, attr, ()) or ())
    return frozenset(names)


@cache
def name_lists(locales: tuple[str, ...] = NAME_LOCALES) -> NameLists:
    """First, middle and last names from Faker's person providers (shipped with the package)."""
    first: set[str] = set()
    last: set[str] = set()
    middle: set[str] = set()
    for locale in locales:
        first |= faker_names(locale, "first")
        middle |= faker_names(locale, "middle")
        # "van der Veen" counts as "Veen": the capitalised last word is what text shows.
        last.update(n.split()[-1] for n in faker_names(locale, "last") if n.strip())
    keep = re.compile(rf"^{_WORD}$")

    def kept(names: set[str]) -> frozenset[str]:
        return frozenset(n for n in names if keep.match(n) and n not in NOT_NAMES)

    return NameLists(kept(first), kept(last), kept(middle))


def name_words(text: str, spans: Iterable[tuple[int, int]], lists: NameLists) -> set[str]:
    """The known first, middle and last names inside found ``spans`` of ``text``."""
    words: set[str] = set()
    for start, end in spans:
        for m in _CAPITALISED.finditer(text, start, end):
            if m.group() in lists.names:
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


def _is_cyrillic(word: str) -> bool:
    return "\u0400" <= word[0] <= "\u052f"


def _next_in(text: str, words: list[re.Match[str]], j: int, names: frozenset[str]) -> bool:
    """Is ``words[j]`` in ``names`` and right after ``words[j - 1]``?"""
    return j < len(words) and words[j].group() in names and _adjacent(text, words[j - 1], words[j])


def _full_name(text: str, words: list[re.Match[str]], i: int, lists: NameLists) -> int:
    """How many of ``words`` from ``i`` on make a full name (0: none)."""
    if i + 1 >= len(words):
        return 0
    word = words[i].group()
    if word in lists.first:
        if _next_in(text, words, i + 1, lists.last):
            return 2
        if lists.middle and _next_in(text, words, i + 1, lists.middle):
            # "Иван Петрович", "Иван Петрович Сидоров"
            return 3 if _next_in(text, words, i + 2, lists.last) else 2
    # Russian and Ukrainian write the last name first in forms and lists.
    if word in lists.last and _is_cyrillic(word) and _next_in(text, words, i + 1, lists.first):
        return 3 if _next_in(text, words, i + 2, lists.middle) else 2
    return 0


def find_names(
    text: str, lists: NameLists, known: frozenset[str] = frozenset()
) -> Iterator[tuple[int, int]]:
    """Spans of person names in ``text``, in order. ``known``: words already found as
    names elsewhere in the same conversation ("Laura Smith" then "Laura" alone)."""
    words = _words(text, lists, known)
    i = 0
    while i < len(words):
        word = words[i]
        count = _full_name(text, words, i, lists)
        if count:
            yield word.start(), words[i + count - 1].end()
            i += count
            continue
        name = word.group()
        if name in known:
            yield word.start(), word.end()
            i += 1
            continue
        following = words[i + 1] if i + 1 < len(words) else None
        if (name in lists.first or name in lists.last) and _CUE_BEFORE.search(
            text, max(0, word.start() - _CUE_WINDOW), word.start()
        ):
            pair = (
                following is not None
                and following.group() in lists.last
                and _adjacent(text, word, following)
            )
            end = following.end() if pair else word.end()
            yield word.start(), end
            i += 2 if pair else 1
            continue
        i += 1
