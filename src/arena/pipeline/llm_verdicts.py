"""Reading a labeller's verdict out of whatever text it wrote.

Labellers are asked for one JSON object, and real models answer with that object bare, in a
Markdown fence, after a paragraph of reasoning, after a ``<think>`` block, with Python's
``True``/``False``, with keys in another case (``"Domain Knowledge"``), with ``"yes"`` for
true, or with no JSON at all (``Specificity: yes`` lines, a bare ``No.``). ``read_fields``
finds the named fields in any of those shapes; ``as_bool`` and ``as_score`` read a value.
Anything that cannot be read for certain raises ``Unparsable`` with a short reason: a wrong
tag is worse than a tag recorded as unparsable.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.IGNORECASE | re.DOTALL)
_UNCLOSED_THINK = re.compile(r"^.*</(think|thinking|reasoning)>", re.IGNORECASE | re.DOTALL)
_LABELLED = re.compile(
    r"^[ \t>*#\-\d.)]*[*_`\"']*"  # bullets, numbering, Markdown emphasis
    r"([A-Za-z][A-Za-z _/-]{0,40}?)[*_`\"']*"  # the key
    r"(?:[ \t]*[:=]|[ \t]+[-–])[ \t]*"  # "key: v", "key = v", "key - v"
    r"[*_`\"']*([^\n*_`\"']+)",
    re.MULTILINE,
)
_NOT_KEY_CHARS = re.compile(r"[^a-z0-9]+")
_JSON = json.JSONDecoder()
_SCALARS = frozenset({bool, int, float, str, type(None)})
TRUE_WORDS = frozenset({"true", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "0"})


class Unparsable(ValueError):
    """No verdict could be read; the message is the short reason kept in the tag."""


def normalise_key(key: object) -> str:
    """``"Domain Knowledge"``, ``"domain-knowledge"`` and ``"DOMAIN_KNOWLEDGE"`` alike."""
    return _normalise_text(key if isinstance(key, str) else str(key))


@lru_cache(maxsize=4096)  # every answer repeats the same few keys: one regex each, not each time
def _normalise_text(key: str) -> str:
    return _NOT_KEY_CHARS.sub("_", key.strip().lower()).strip("_")


KeyOptions = tuple[tuple[str, tuple[str, ...]], ...]


def _key_options(aliases: Mapping[str, Sequence[str]]) -> KeyOptions:
    """Each field with the normalised keys it may be given under, its own name first."""
    try:
        return _cached_key_options(tuple(aliases.items()))
    except TypeError:  # aliases in lists: not hashable, normalised afresh
        return _build_key_options(tuple(aliases.items()))


def _build_key_options(items: tuple[tuple[str, Sequence[str]], ...]) -> KeyOptions:
    return tuple((name, tuple(normalise_key(a) for a in (name, *names))) for name, names in items)


_cached_key_options = lru_cache(maxsize=256)(_build_key_options)


def strip_reasoning(text: str) -> str:
    """The answer without a reasoning model's thinking block (closed, or cut at its end)."""
    if "</" not in text:  # both patterns need a closing tag; most answers have none
        return text
    text = _THINK.sub(" ", text)
    return _UNCLOSED_THINK.sub(" ", text)


def _balanced_from(text: str, start: int) -> str | None:
    """The ``{...}`` substring with balanced braces that starts at ``start`` (strings taken
    into account), or None when its braces never close."""
    depth, quote, escaped = 0, "", False
    for end in range(start, len(text)):
        ch = text[end]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : end + 1]
    return None


def _object_at(text: str, start: int) -> tuple[dict[str, Any], int] | None:
    """The object whose ``{`` is at ``start`` and where it ends: JSON read in place by the C
    decoder (what most answers hold, and the same object and end the brace scan would give),
    else the balanced substring as a Python literal; None if neither."""
    try:
        value, end = _JSON.raw_decode(text, start)
    except ValueError:
        candidate = _balanced_from(text, start)
        if candidate is None:
            return None
        value, end = _load_object(candidate), start + len(candidate)
    return (value, end) if isinstance(value, dict) else None


def _load_object(candidate: str) -> dict[str, Any] | None:
    """JSON, else a Python literal (single quotes, True/False); None if neither."""
    try:
        value = json.loads(candidate)
    except ValueError:
        try:
            value = ast.literal_eval(re.sub(r"\b(true|false|null)\b", _py_word, candidate))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


def _py_word(match: re.Match[str]) -> str:
    return {"true": "True", "false": "False", "null": "None"}[match.group(1)]


def _flatten(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Keys normalised; a nested object's keys (``{"criteria": {...}}``) lifted one level."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        # Parsed values are mostly bool/int/str: skip the slower abstract Mapping check.
        if type(value) not in _SCALARS and isinstance(value, Mapping):
            for inner, v in value.items():
                out.setdefault(normalise_key(inner), v)
        else:
            out[normalise_key(key)] = value
    return out


def json_objects(text: str) -> list[dict[str, Any]]:
    """Objects found in the text (bare or in a Markdown fence), in reading order; an object
    inside another is read as part of the outer one."""
    found = []
    start = text.find("{")
    while start >= 0:
        hit = _object_at(text, start)
        if hit is not None:
            found.append(_flatten(hit[0]))
        # The next start after an object read is past its end: one inside is part of it.
        start = text.find("{", hit[1] if hit is not None else start + 1)
    return found


def labelled_values(text: str) -> dict[str, str]:
    """``Key: value`` pairs from prose lines (Markdown bold, bullets, quotes allowed); the
    last one wins, as a model's final line usually settles what it said before."""
    out: dict[str, str] = {}
    for match in _LABELLED.finditer(text):
        out[normalise_key(match.group(1))] = match.group(2).strip()
    return out


def read_fields(text: str, aliases: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """For each field name, the raw value the answer gives it (under the name or an alias).

    The last JSON object holding any of the fields is used; with none, labelled prose lines.
    Fields the answer does not give are missing from the result.
    """
    answer = strip_reasoning(text)
    options = _key_options(aliases)
    for source in _sources(answer):
        hits = {}
        for name, keys in options:
            for key in keys:  # the field's own name first, then its aliases in order
                if key in source:
                    hits[name] = source[key]
                    break
        if hits:
            return hits
    return {}


def _sources(answer: str) -> Iterator[Mapping[str, Any]]:
    """Where fields are looked for, in turn: JSON objects from the last, then prose lines
    (read only when no object has a field: most answers are one JSON object)."""
    yield from reversed(json_objects(answer))
    yield labelled_values(answer)


def _word(value: str) -> str:
    """The first word of a value, lower-case, without punctuation (``"Yes."`` → ``yes``)."""
    words = re.findall(r"[a-z0-9]+", value.lower())
    return words[0] if words else ""


def as_bool(value: Any) -> bool | None:
    """A yes/no value from JSON or prose; None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = _word(value)
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return None


def as_score(value: Any, low: int, high: int) -> int | None:
    """A whole score in [low, high] from ``4``, ``4.0``, ``"4"``, ``"4/5"``, ``"4 out of 5"``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)(?:\.0+)?\s*(?:(?:/|out of)\s*\d+)?\s*[.!]?\s*", value)
        value = int(match.group(1)) if match else None
    if isinstance(value, int) and low <= value <= high:
        return value
    return None


def bare_yes_no(text: str) -> bool | None:
    """A verdict written as a word: the answer starts with yes/no, or its last line holds
    only one of the two (``... so the answer is: No``); None when it says both or neither."""
    answer = strip_reasoning(text).strip()
    first = as_bool(answer[:20]) if answer else None
    if first is not None and _word(answer) in {"yes", "no", "true", "false"}:
        return first
    lines = [line for line in answer.splitlines() if line.strip()]
    if not lines:
        return None
    said = {w for w in re.findall(r"[a-z]+", lines[-1].lower()) if w in {"yes", "no"}}
    return (said == {"yes"}) if len(said) == 1 else None


def bare_score(text: str, low: int, high: int) -> int | None:
    """A score written alone (``4``, ``4/5``), after the word score (``my score is 4``),
    or as the only number of the last line."""
    answer = strip_reasoning(text).strip()
    whole = as_score(answer, low, high)
    if whole is not None:
        return whole
    named = re.findall(r"\bscore\b\W{0,4}(?:is\W{0,3}|of\W{0,3})?(\d+)(?!\d|\.\d)", answer, re.I)
    if named:
        return as_score(named[-1], low, high)
    lines = [line for line in answer.splitlines() if line.strip()]
    if not lines:
        return None
    if re.search(r"\d\.\d", lines[-1]):
        return None  # "2.5": not a whole score, and no other number is surely the verdict
    numbers = re.findall(r"(?<![\d.])(\d+)(?:\s*(?:/|out of)\s*\d+)?(?!\d|\.\d)", lines[-1])
    if len(numbers) == 1:
        return as_score(numbers[0], low, high)
    return None


def excerpt(text: str, limit: int = 160) -> str:
    """A one-line excerpt of an answer for a tag's ``detail``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
