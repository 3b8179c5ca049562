"""The release scrubber: personal data embedded in random text is replaced, near misses that
only look like it (versions, ISBNs, order numbers, slices, times) are kept.

Phone numbers come from libphonenumber's own example numbers (so they are valid), names from
Faker's lists (the ones the scrubber knows), IP addresses from Hypothesis.
"""

from __future__ import annotations

import ipaddress

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from arena.pipeline.scrub import PII_KINDS, SCRUBBER_VERSION, TOKENS, Scrubber, luhn_valid

SCRUBBER = Scrubber()
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Filler: lowercase words and punctuation, so it holds no personal data of its own, and none
# of the words that introduce a number as not personal ("version 10.0.0.1", "order 4111...").
_NOT_PERSONAL_CUES = frozenset((
    "order", "invoice", "tracking", "ticket", "ref", "reference", "receipt", "serial", "sku",
    "isbn", "issn", "doi", "id", "version", "ver", "release", "build", "patch", "model", "part",
    "case", "transaction",
))  # fmt: skip
_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=9).filter(
    lambda w: w not in _NOT_PERSONAL_CUES
)
filler = st.lists(_word, max_size=12).map(" ".join)
sentence_end = st.sampled_from(["", ".", ",", "!", "?", ";", ")"])


def _embed(before: str, pii: str, after: str, end: str) -> str:
    return f"{before} {pii}{end} {after}".strip()


def _check_removed(text: str, pii: str, kind: str) -> None:
    result = SCRUBBER.scrub(text)
    assert pii not in result.text, (text, result.text)
    assert TOKENS[kind] in result.text
    assert result.counts.get(kind, 0) >= 1


# ---------------------------------------------------------------- what must go

_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_local = st.from_regex(r"[a-z0-9](?:[a-z0-9_+-]|\.[a-z0-9]){0,20}", fullmatch=True)
emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    _local,
    st.lists(_label, min_size=1, max_size=3),
    st.sampled_from(["com", "org", "net", "de", "co.uk", "io", "info", "example"]),
)


@PROPERTY
@given(filler, emails, filler, sentence_end)
def test_emails_are_removed(before, email, after, end) -> None:
    assume(not email.split("@")[1][0].isdigit() or "x." not in email)  # icon@2x.png rule
    _check_removed(_embed(before, email, after, end), email, "email")


def _with_luhn_digit(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


@st.composite
def card_numbers(draw) -> str:
    """Luhn-valid numbers of the shapes of Visa, Mastercard (16 digits) and Amex (15)."""
    prefix = draw(st.sampled_from(["4", "51", "53", "55", "2221", "34", "37"]))
    length = 15 if prefix in ("34", "37") else 16
    rest = draw(st.text("0123456789", min_size=length - 1 - len(prefix), max_size=16))
    return _with_luhn_digit(prefix + rest[: length - 1 - len(prefix)])


def _format_card(digits: str, style: str) -> str:
    if style == "plain":
        return digits
    sep = " " if style == "spaces" else "-"
    if len(digits) == 15:  # American Express: 4-6-5
        return sep.join((digits[:4], digits[4:10], digits[10:]))
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


@PROPERTY
@given(filler, card_numbers(), st.sampled_from(["plain", "spaces", "dashes"]), filler, sentence_end)
def test_card_numbers_are_removed(before, digits, style, after, end) -> None:
    assert luhn_valid(digits)
    card = _format_card(digits, style)
    _check_removed(_embed(before, card, after, end), card, "card")


PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "ES", "IT", "CA", "MX"]
PHONE_TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]


@st.composite
def phone_numbers(draw) -> tuple[str, str]:
    """(region, a valid number of it): an example number with its last digits varied."""
    region = draw(st.sampled_from(PHONE_REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(PHONE_TYPES)))
    national = str(example.national_number)
    tail = draw(st.text("0123456789", min_size=3, max_size=3))
    number = phonenumbers.parse(f"+{example.country_code}{national[:-3]}{tail}")
    assume(phonenumbers.is_valid_number(number))
    return region, number


@PROPERTY
@given(
    filler,
    phone_numbers(),
    st.sampled_from(["international", "e164", "national"]),
    filler,
    sentence_end,
)
def test_phone_numbers_are_removed(before, region_number, style, after, end) -> None:
    region, number = region_number
    if style == "national":
        # National form is read as the configured region's (US by default).
        assume(region == "US")
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    elif style == "e164":
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    else:
        formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    _check_removed(_embed(before, formatted, after, end), formatted, "phone")


def test_an_international_number_that_passes_the_card_checksum_is_a_phone() -> None:
    # Found by the property above: after "+55" the digits also pass Luhn's check.
    formatted = "+55 11 96123-4474"
    _check_removed(_embed("call", formatted, "today", "."), formatted, "phone")


def test_a_card_number_glued_to_a_word_by_a_plus_is_still_a_card() -> None:
    # Only a "+" that starts a token makes a phone number: "x+" is part of something else.
    assert SCRUBBER.scrub("x+4111111111111111 ok").text == "x+<CARD> ok"
    assert SCRUBBER.scrub("total=1+4111111111111111;").text == "total=1+<CARD>;"


def _personal_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        address.is_loopback or address.is_unspecified or address.is_reserved or address.is_multicast
    )


def _not_a_slice(text: str) -> bool:
    groups = [g for g in text.replace("::", ":").split(":") if g]
    return "::" not in text or len(groups) >= 3 or any(len(g) >= 3 for g in groups)


@PROPERTY
@given(filler, st.ip_addresses(), filler, sentence_end)
def test_ip_addresses_are_removed(before, address, after, end) -> None:
    assume(_personal_address(address))
    text = str(address)
    assume(_not_a_slice(text))
    _check_removed(_embed(before, text, after, end), text, "ip")


def _faker_names():
    from arena.pipeline.scrub_names import faker_names, name_lists

    lists = name_lists()
    first = sorted(n for n in faker_names("en_US", "first") if n in lists.first)
    last = sorted(n for n in faker_names("en_US", "last") if n in lists.last)
    return first, last


FIRST_NAMES, LAST_NAMES = _faker_names()


@PROPERTY
@given(filler, st.sampled_from(FIRST_NAMES), st.sampled_from(LAST_NAMES), filler, sentence_end)
def test_full_names_are_removed(before, first, last, after, end) -> None:
    name = f"{first} {last}"
    _check_removed(_embed(before, name, after, end), name, "name")


@PROPERTY
@given(
    st.sampled_from(["My name is", "my name is", "Dear", "Regards,", "Thanks,", "I'm", "Hi"]),
    st.sampled_from(FIRST_NAMES),
    filler,
)
def test_a_first_name_after_a_cue_is_removed(cue, first, after) -> None:
    text = f"{cue} {first}. {after}"
    result = SCRUBBER.scrub(text)
    assert result.text.startswith(f"{cue} <NAME>."), result.text


@PROPERTY
@given(
    st.from_regex(r"[a-z]{1,8}:[a-z0-9!~*]{1,12}", fullmatch=True),
    st.sampled_from(["https", "postgresql", "redis", "ftp"]),
)
def test_credentials_in_urls_are_removed(userinfo, scheme) -> None:
    text = f"connect with {scheme}://{userinfo}@db.internal.example:5432/app please"
    result = SCRUBBER.scrub(text)
    assert userinfo not in result.text
    assert f"{scheme}://<CREDENTIALS>@db.internal.example:5432/app" in result.text


# ---------------------------------------------------------------- what must stay

versions = st.lists(st.integers(0, 300), min_size=5, max_size=7).map(
    lambda parts: ".".join(map(str, parts))
)


@PROPERTY
@given(filler, versions, filler)
def test_version_strings_are_kept(before, version, after) -> None:
    text = _embed(before, version, after, "")
    assert SCRUBBER.scrub(text).text == text


def _isbn13(body: str) -> str:
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


@PROPERTY
@given(
    filler,
    st.sampled_from(["978", "979"]),
    st.text("0123456789", min_size=9, max_size=9),
    st.booleans(),
    st.sampled_from(["", "ISBN ", "ISBN-13: "]),
)
def test_isbns_are_kept(before, prefix, body, hyphens, cue) -> None:
    isbn = _isbn13(prefix + body)
    if hyphens:
        isbn = f"{isbn[:3]}-{isbn[3]}-{isbn[4:6]}-{isbn[6:12]}-{isbn[12]}"
    text = f"{before} {cue}{isbn}".strip()
    assert SCRUBBER.scrub(text).text == text


@PROPERTY
@given(
    st.sampled_from(["Order #", "order number ", "Invoice no. ", "tracking number: ", "ref "]),
    st.text("0123456789", min_size=6, max_size=19),
    filler,
)
def test_order_numbers_are_kept(cue, digits, after) -> None:
    text = f"{cue}{digits} {after}".strip()
    assert SCRUBBER.scrub(text).text == text


@pytest.mark.parametrize(
    "text",
    [
        "pip install numpy==1.26.4 and torch 2.13.0.1.7",
        "Dotted identifiers 0.1.1.241.200.10.10 and 3.14.159.26.53 stay.",
        "Build v1.2.3.4 is out; release 10.0.0.1 fixes it.",
        "evens = a[0::2]; odds = a[1::2]",
        "The meeting is at 12:30:45 on 2024-01-15.",
        "std::vector<int> v; std::map<K, V> m;",
        "Use icon@2x.png, @property and user@localhost.",
        "It costs $1,234.56 or 1234567 points.",
        "Listen on 0.0.0.0:8000 or 127.0.0.1 or [::1]:8080 with mask 255.255.255.0.",
        "MAC 00:1A:2B:3C:4D:5E and the hash deadbeef",
        "Python Software Foundation, New York, Machine Learning, Hello World",
        "Paths like /home/John Smith.txt are left alone",
        "Timestamp 1700000000 and the number 1234567890",
    ],
)
def test_near_misses_are_kept(text) -> None:
    assert SCRUBBER.scrub(text).text == text


# ---------------------------------------------------------------- the whole


def test_every_kind_in_one_text() -> None:
    text = (
        "Hi, my name is Laura. Mail laura.smith@example.com or call +1 650-253-0000; "
        "card 4111 1111 1111 1111; server 203.0.113.9 and 2001:db8::8a2e:370:7334; "
        "db at postgresql://app:hunter2@db.example.com/app. Met John Q. Smith there."
    )
    result = SCRUBBER.scrub(text)
    assert result.text == (
        "Hi, my name is <NAME>. Mail <EMAIL> or call <PHONE>; "
        "card <CARD>; server <IP> and <IP>; "
        "db at postgresql://<CREDENTIALS>@db.example.com/app. Met <NAME> there."
    )
    assert result.counts == {
        "name": 2,
        "email": 1,
        "phone": 1,
        "card": 1,
        "ip": 2,
        "url_credentials": 1,
    }
    assert set(result.counts) == set(PII_KINDS)
    assert SCRUBBER.scrub(result.text).text == result.text  # tokens are never found again
    assert SCRUBBER_VERSION


def test_code_around_personal_data_is_kept() -> None:
    code = "emails = ['john.doe@example.com', \"o'brien@example.org\"]  # see 10.0.35.11:8545"
    assert SCRUBBER.scrub(code).text == "emails = ['<EMAIL>', \"<EMAIL>\"]  # see <IP>:8545"
    url = "curl https://deploy:t0ken@ci.example.com/api?x=1 -H 'X: y'"
    assert SCRUBBER.scrub(url).text == "curl https://<CREDENTIALS>@ci.example.com/api?x=1 -H 'X: y'"


def test_a_name_found_once_is_removed_everywhere_in_the_conversation() -> None:
    results = SCRUBBER.scrub_conversation(
        ["I am writing for Laura Smith.", "Sure, Laura will get it. Smith is a fine name."]
    )
    assert [r.text for r in results] == [
        "I am writing for <NAME>.",
        "Sure, <NAME> will get it. <NAME> is a fine name.",
    ]
    alone = SCRUBBER.scrub("Sure, Laura will get it.")
    assert alone.text == "Sure, Laura will get it."  # a first name alone is an ordinary word


def test_phone_regions_and_names_are_options() -> None:
    german = "Ruf an: 030 901820"
    assert SCRUBBER.scrub(german).text == german  # national German form, US reading
    assert Scrubber(phone_regions=("DE",)).scrub(german).text == "Ruf an: <PHONE>"
    assert Scrubber(names=False).scrub("Maria Garcia").text == "Maria Garcia"


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112") and not luhn_valid("1234567812345678")
