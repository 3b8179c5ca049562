"""The personal-data scrubber run on every text of a released dataset.

Finds, on the original text, the spans of: credentials in URLs (``scheme://user:pw@host``),
email addresses, payment card numbers (13-19 digits with a card-network prefix and a valid
Luhn check digit), phone numbers (Google's libphonenumber metadata through ``phonenumbers``:
valid numbers only, in international form or national form of ``phone_regions``), IPv4 and
IPv6 addresses (checked by ``ipaddress``; loopback, unspecified, reserved and multicast
addresses such as ``127.0.0.1``, ``0.0.0.0`` and netmasks identify nobody and stay, as code is
full of them; private ones go) and person names (``scrub_names`` for Latin, Cyrillic and Greek,
``scrub_names_scripts`` for Hebrew, Arabic, Devanagari, Thai and CJK). Overlaps go to the
earlier kind in ``PII_KINDS``; each span becomes a token such as ``<EMAIL>``.

Near misses stay: version strings (``1.2.3.4.5``, ``version 10.0.0.1``), Python slices
(``a[1::2]``), times, ISBNs and numbers introduced as order, invoice or tracking numbers.
Bump ``SCRUBBER_VERSION`` whenever what is found changes: the dataset card records it.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from arena.pipeline.scrub_names import NameLists, find_names, name_lists, name_words
from arena.pipeline.scrub_names_scripts import (
    ScriptNameLists,
    find_script_names,
    script_name_lists,
)

SCRUBBER_VERSION = "1.2"
PII_KINDS = ("url_credentials", "email", "card", "phone", "ip", "name")
TOKENS = {
    "url_credentials": "<CREDENTIALS>",
    "email": "<EMAIL>",
    "card": "<CARD>",
    "phone": "<PHONE>",
    "ip": "<IP>",
    "name": "<NAME>",
}

_URL_USERINFO = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://(?P<userinfo>[^\s/?#@\[\]<>\"']+)@")
_EMAIL = re.compile(
    r"(?<![\w.+%-])(?P<local>\w[\w.+%'-]{0,63})@"
    r"(?P<domain>(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24})(?![\w-]|\.[^\W_])"
)
_RETINA_IMAGE = re.compile(r"\d+x\.", re.ASCII)  # icon@2x.png is a file name
_CARD = re.compile(r"\d[\d -]{11,24}\d")
_CARD_SEPARATORS = re.compile(r"[ -]{2}")
_CARD_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[0689]|6[0-9]|1800|2131|35)")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}", re.ASCII)
_IPV6 = re.compile(r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*(?:%[\w.]+)?")
_DIGIT_RUN = re.compile(r"\d(?:[ \t().+/-]{0,3}\d){6,24}")
_WINDOW_MARGIN = 12
# A number introduced as one of these is not contact data (an order, an ISBN, a version).
_NOT_PERSONAL_CUE = re.compile(
    r"(?i:\b(?:order|invoice|tracking|ticket|ref|reference|receipt|serial|sku|isbn(?:-1[03])?|"
    r"issn|doi|id|version|ver|release|build|patch|model|part|case|transaction)"
    r"(?:\s*(?:no\.?|number|num|nr|#|id))?\s*[#:.=]?\s*)$"
)
_CUE_WINDOW = 30


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check every payment card number carries in its last digit."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _glued_before(text: str, start: int, also: str) -> bool:
    """Is the character before ``start`` part of the same token (a word character or one
    of ``also``)?"""
    if start == 0:
        return False
    ch = text[start - 1]
    return ch.isalnum() or ch == "_" or ch in also


def _glued_after(text: str, end: int, also: str, before_digit: str) -> bool:
    """Does the token go on after ``end`` (a word character, one of ``also``, or one of
    ``before_digit`` followed by a digit, as in the fifth part of ``1.2.3.4.5``)?"""
    if end >= len(text):
        return False
    ch = text[end]
    if ch.isalnum() or ch == "_" or ch in also:
        return True
    return ch in before_digit and end + 1 < len(text) and text[end + 1].isdigit()


def _windows(text: str) -> Iterator[tuple[int, int]]:
    """Merged (start, end) windows around runs of at least seven digits."""
    lo = hi = -1
    for m in _DIGIT_RUN.finditer(text):
        start, end = max(0, m.start() - _WINDOW_MARGIN), m.end() + _WINDOW_MARGIN
        if start <= hi:
            hi = end
            continue
        if hi > lo:
            yield lo, min(hi, len(text))
        lo, hi = start, end
    if hi > lo:
        yield lo, min(hi, len(text))


def _introduced_as_not_personal(text: str, start: int) -> bool:
    return _NOT_PERSONAL_CUE.search(text[max(0, start - _CUE_WINDOW) : start]) is not None


@dataclass(frozen=True)
class ScrubResult:
    text: str
    counts: dict[str, int] = field(default_factory=dict)


class Scrubber:
    """Finds and replaces personal data. Build once, reuse for every text (it holds the
    phone metadata and the name lists, loaded on first use)."""

    def __init__(self, *, phone_regions: Sequence[str] = ("US",), names: bool = True) -> None:
        self.phone_regions = tuple(phone_regions)
        self.names = names
        self._name_lists: NameLists | None = None
        self._script_lists: ScriptNameLists | None = None

    # -- detectors: each yields (start, end) spans of the original text

    def _url_credentials(self, text: str) -> Iterator[tuple[int, int]]:
        if "://" not in text:
            return
        for m in _URL_USERINFO.finditer(text):
            yield m.start("userinfo"), m.end("userinfo")

    def _emails(self, text: str) -> Iterator[tuple[int, int]]:
        if "@" not in text:
            return
        for m in _EMAIL.finditer(text):
            if not _RETINA_IMAGE.match(m["domain"]):
                yield m.start(), m.end()

    def _cards(self, text: str) -> Iterator[tuple[int, int]]:
        for m in _CARD.finditer(text):
            start, raw = m.start(), m.group()
            if _glued_before(text, start, ".,-") or _CARD_SEPARATORS.search(raw):
                continue
            # A "+" that starts a token ("+55 11 96123-4474") makes an international phone
            # number, never a card; one glued to a word before it ("x+4111…") does not.
            if text[start - 1 : start] == "+" and not _glued_before(text, start - 1, ""):
                continue
            # The run may have swallowed a following number ("... 1111 12/25"): try the
            # longest run of whole groups that makes a card.
            groups = re.split(r"[ -]", raw)
            for count in range(len(groups), 0, -1):
                candidate = raw[: sum(len(g) + 1 for g in groups[:count]) - 1]
                end = start + len(candidate)
                digits = "".join(groups[:count])
                if (
                    13 <= len(digits) <= 19
                    and not _glued_after(text, end, "-", ".,")
                    and _CARD_PREFIX.match(digits)
                    and luhn_valid(digits)
                    and not _introduced_as_not_personal(text, start)
                ):
                    yield start, end
                    break

    def _phones(self, text: str) -> Iterator[tuple[int, int]]:
        import phonenumbers

        # Digits grouped as the region writes numbers: "25.1.8937393" is a version, not a phone.
        leniency = phonenumbers.Leniency.STRICT_GROUPING
        # The matcher is slow on long texts: it only reads windows around runs of digits.
        for lo, hi in _windows(text):
            window = text[lo:hi]
            for region in self.phone_regions:
                for m in phonenumbers.PhoneNumberMatcher(window, region, leniency=leniency):
                    start, end = lo + m.start, lo + m.end
                    if not _introduced_as_not_personal(text, start) and not _dotted_run(
                        text, start, end
                    ):
                        yield start, end

    def _ips(self, text: str) -> Iterator[tuple[int, int]]:
        if "." in text:
            for m in _IPV4.finditer(text):
                start, end = m.start(), m.end()
                if not _glued_before(text, start, ".") and not _glued_after(text, end, "-", "."):
                    yield from self._address(text, start, m.group())
        if text.count(":") >= 2:
            for m in _IPV6.finditer(text):
                candidate = m.group().rstrip(".")
                start, end = m.start(), m.start() + len(candidate)
                if _glued_before(text, start, ":.") or _glued_after(text, end, ":", ""):
                    continue
                if "::" in candidate:
                    groups = [g for g in re.split(r"[:.%]", candidate) if g]
                    # a[1::2] is a slice; fe80::1 and 2001:db8::7 are addresses.
                    if len(groups) < 3 and not any(len(g) >= 3 for g in groups):
                        continue
                yield from self._address(text, start, candidate)

    def _address(self, text: str, start: int, candidate: str) -> Iterator[tuple[int, int]]:
        try:
            address = ipaddress.ip_address(candidate.split("%")[0])
        except ValueError:
            return
        if address.is_loopback or address.is_unspecified or address.is_reserved:
            return  # 127.0.0.1, 0.0.0.0, netmasks such as 255.255.255.0: nobody's address
        if address.is_multicast:
            return
        if not _introduced_as_not_personal(text, start):
            yield start, start + len(candidate)

    def _lists(self) -> NameLists:
        if self._name_lists is None:
            self._name_lists = name_lists()
        return self._name_lists

    def _person_names(self, text: str, known: frozenset[str]) -> Iterator[tuple[int, int]]:
        if self.names:
            yield from find_names(text, self._lists(), known)
            if self._script_lists is None:
                self._script_lists = script_name_lists()
            yield from find_script_names(text, self._script_lists)

    # -- the scrub

    def spans(
        self, text: str, known_names: frozenset[str] = frozenset()
    ) -> list[tuple[int, int, str]]:
        """Non-overlapping (start, end, kind) spans, in text order. ``known_names``: name
        words found elsewhere in the same conversation, removed wherever they stand alone."""
        detectors = (
            ("url_credentials", self._url_credentials),
            ("email", self._emails),
            ("card", self._cards),
            ("phone", self._phones),
            ("ip", self._ips),
            ("name", lambda t: self._person_names(t, known_names)),
        )
        taken: list[tuple[int, int, str]] = []
        for kind, detect in detectors:
            for start, end in detect(text):
                if start < end and not any(s < end and start < e for s, e, _ in taken):
                    taken.append((start, end, kind))
        return sorted(taken)

    def scrub(self, text: str, known_names: frozenset[str] = frozenset()) -> ScrubResult:
        if not text:
            return ScrubResult(text or "", {})
        spans = self.spans(text, known_names)
        if not spans:
            return ScrubResult(text, {})
        parts: list[str] = []
        position = 0
        for start, end, kind in spans:
            parts.append(text[position:start])
            parts.append(TOKENS[kind])
            position = end
        parts.append(text[position:])
        return ScrubResult("".join(parts), dict(Counter(kind for _, _, kind in spans)))

    def scrub_conversation(self, texts: Sequence[str]) -> list[ScrubResult]:
        """Scrub the messages of one conversation together: a name found in one message
        ("Laura Smith") is also removed where it stands alone in another ("Thanks, Laura" is
        found anyway; "Sure Laura" only this way)."""
        known: set[str] = set()
        if self.names:
            for text in texts:
                if text:
                    found = self._person_names(text, frozenset())
                    known |= name_words(text, found, self._lists())
        frozen = frozenset(known)
        done: dict[str, ScrubResult] = {}  # both sides of a battle repeat the user's turns
        for text in texts:
            if text not in done:
                done[text] = self.scrub(text, frozen)
        return [done[text] for text in texts]

    def scrub_all(self, texts: Iterable[str], counts: Counter[str]) -> list[str]:
        """Scrub many texts, adding what was found to ``counts``."""
        out = []
        for text in texts:
            result = self.scrub(text)
            counts.update(result.counts)
            out.append(result.text)
        return out


_DOTTED_RUN = re.compile(r"[0-9.]*")


def _dotted_run(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` sits in a run of digits and dots with four or more dots
    ("0.1.1.241.200.10.10"): a version or an identifier; dotted phone numbers have at most
    three ("1.555.123.4567"), and an international one starts with "+"."""
    lo = start
    while lo > 0 and (text[lo - 1].isdigit() or text[lo - 1] == "."):
        lo -= 1
    run = _DOTTED_RUN.match(text, lo).group()
    return run.count(".") >= 4 and len(run) >= end - lo and text[lo - 1 : lo] != "+"
