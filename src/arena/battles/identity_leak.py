"""Spotting an answer that gives away which model wrote it.

For every registry model we build a set of identity terms:

- ``name`` and ``alias`` terms, exactly as the registry gives them (always used);
- the ``organization`` (and its distinctive words, e.g. "Mistral" from "Mistral AI");
- generated variants of the name: the name without version numbers, sizes and generic
  suffixes ("claude sonnet" from "claude-3-5-sonnet") and the family word ("claude").

Matching is case-insensitive, tolerant of spacing and punctuation inside a term ("gpt4",
"GPT-4", "gpt 4" and "gpt_4" all match the name "gpt-4") and bounded by word edges so
"llama" does not fire inside "llamas". False positives are kept down by a minimum length and
a stoplist of common words for *generated* terms; an organization that is itself a common
word ("Meta") is matched only in the exact capitalisation the registry gives it, so a
"meta-analysis" does not count while "trained by Meta" does.

A match marks the battle as leaked: the vote is still stored, flagged, and left out of the
ratings, and the user is told before voting. The web layer, after each finished answer of
an anonymous battle::

    match = detector.check_answer(text, side_model=battle.model_for(side),
                                  battle_models=battle.models, scope="all")
    if match:
        battle = battle.flag_identity_leak(side, match.term, now=now)

The web arena uses ``scope="all"``: the user sees both the answer and whether it was
flagged, so a flag raised only for the drawn pair's terms would confirm that a model the
answer names is in the battle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from arena.providers.registry import ModelSpec

TermKind = Literal["name", "alias", "organization", "variant", "family"]
LeakScope = Literal["own", "battle", "all"]

# Words that collide with model or company names but are ordinary English or generic model
# vocabulary; generated terms made only of these are dropped.
DEFAULT_STOPWORDS: frozenset[str] = frozenset(
    """
    ai a an the and or of for to in on by with it model models chat chatbot bot assistant
    instruct instruction hf base turbo preview latest beta alpha exp experimental mini small
    medium large xl xxl pro plus max ultra flash lite nano micro tiny open code coder vision
    online fast free new next nova air light deep inc ltd llc co corp corporation company
    labs lab research cloud team technologies technology foundation group systems institute
    university meta command palm bard falcon orca phoenix sonnet haiku opus apple amazon phi
    star spark wizard dolly vicuna alpaca koala guanaco zephyr jamba grok reka yi mist solar
    bloom titan aurora
    """.split()  # noqa: SIM905
)
# Generic parts of a model name that say nothing about which model it is; dropped when the
# version-stripped variant is built ("llama-3-8b-instruct" -> "llama").
GENERIC_NAME_PARTS: frozenset[str] = frozenset(
    """
    instruct instruction chat it hf base preview latest exp experimental beta alpha online
    gguf awq gptq fp8 fp16 bf16 int4 int8 q4 q8
    """.split()  # noqa: SIM905
)

# Unicode-aware, so names and aliases in any script ("通义千问", "Ernie Bot") become terms.
_SPLIT = re.compile(r"[\W_]+")
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")
# From here on (CJK, kana, hangul...) scripts are written without spaces between words, so
# a term in them is matched anywhere, not only between word edges.
_UNSPACED_SCRIPTS_FROM = 0x2E80
# Sizes and dates carry no identity of their own ("8b", "2407", "v2").
_NOISE_TOKEN = re.compile(r"^(?:[0-9]+|v[0-9]*|[0-9]+[bmkt]|[a-z])$")
_SEP = r"[\s\-_.:/]*"


@dataclass(frozen=True, slots=True)
class IdentityTerm:
    model: str
    text: str
    kind: TermKind
    pattern: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class LeakMatch:
    model: str
    term: str
    kind: TermKind
    matched_text: str
    start: int
    end: int


def _tokens(value: str) -> list[str]:
    """'Claude-3.5-Sonnet' -> ['claude', '3', '5', 'sonnet']; 'qwen2.5' -> ['qwen','2','5'];
    '通义千问' -> ['通义千问']."""
    out: list[str] = []
    for chunk in _SPLIT.split(value.lower()):
        if chunk:
            out.extend(p for p in _LETTER_DIGIT.split(chunk) if p)
    return out


def _pattern(tokens: Sequence[str], *, case_sensitive_text: str | None = None) -> re.Pattern[str]:
    """A regex for the token sequence with optional separators between tokens.

    A term ending in a letter may be followed by digits ("claude3", "gpt4o"), one ending in
    a digit may be followed by letters ("gpt-4o"); never by more of the same class.
    """
    if case_sensitive_text is not None:
        body = re.escape(case_sensitive_text)
        tail = case_sensitive_text[-1]
        flags = 0
    else:
        body = _SEP.join(re.escape(t) for t in tokens)
        tail = tokens[-1][-1]
        flags = re.IGNORECASE
    head = (case_sensitive_text or tokens[0])[0]
    after = r"(?![^\W\d_])" if not tail.isdigit() else r"(?!\d)"
    before = r"(?<![^\W_])"
    if ord(head) >= _UNSPACED_SCRIPTS_FROM:
        before = ""
    if ord(tail) >= _UNSPACED_SCRIPTS_FROM:
        after = ""
    return re.compile(rf"{before}{body}{after}", flags)


def _alnum_len(tokens: Sequence[str]) -> int:
    return sum(len(t) for t in tokens)


class IdentityLeakDetector:
    """Finds identity terms of registry models in answer text. Build with ``from_specs``."""

    def __init__(self, terms: Iterable[IdentityTerm]):
        self._terms: dict[str, list[IdentityTerm]] = {}
        for term in terms:
            self._terms.setdefault(term.model, []).append(term)

    @classmethod
    def from_specs(
        cls,
        specs: Iterable[ModelSpec],
        *,
        stopwords: Iterable[str] = DEFAULT_STOPWORDS,
        min_length: int = 3,
    ) -> IdentityLeakDetector:
        """Build the term lists. ``min_length`` counts letters and digits of a generated
        term; explicit names and aliases only need two."""
        stop = frozenset(w.lower() for w in stopwords)
        terms: list[IdentityTerm] = []
        for spec in specs:
            terms.extend(_terms_for(spec, stop, min_length))
        return cls(terms)

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self._terms)

    def terms_for(self, model: str) -> tuple[IdentityTerm, ...]:
        return tuple(self._terms.get(model, ()))

    def find(self, text: str, models: Iterable[str] | None = None) -> list[LeakMatch]:
        """Every identity term of ``models`` (all models when None) found in ``text``,
        in text order, one match per term."""
        chosen = self._terms if models is None else {m: self._terms.get(m, []) for m in models}
        matches = []
        for model, terms in chosen.items():
            for term in terms:
                m = term.pattern.search(text)
                if m:
                    matches.append(
                        LeakMatch(
                            model=model,
                            term=term.text,
                            kind=term.kind,
                            matched_text=m.group(0),
                            start=m.start(),
                            end=m.end(),
                        )
                    )
        matches.sort(key=lambda x: (x.start, -(x.end - x.start)))
        return matches

    def first(self, text: str, models: Iterable[str] | None = None) -> LeakMatch | None:
        found = self.find(text, models)
        return found[0] if found else None

    def check_answer(
        self,
        text: str,
        *,
        side_model: str,
        battle_models: Sequence[str],
        scope: LeakScope = "battle",
    ) -> LeakMatch | None:
        """Does this answer give the battle away?

        ``own``: only the answering model's terms. ``battle`` (default): the terms of both
        models in the battle, since "I am <the other one>" also lets the user map names to
        sides. ``all``: any registry model, the strictest setting.
        """
        if scope == "own":
            models: Iterable[str] | None = [side_model]
        elif scope == "battle":
            models = list(dict.fromkeys([side_model, *battle_models]))
        else:
            models = None
        return self.first(text, models)


def _terms_for(spec: ModelSpec, stop: frozenset[str], min_length: int) -> list[IdentityTerm]:
    seen: set[tuple[str, ...]] = set()
    out: list[IdentityTerm] = []

    def add(tokens: list[str], kind: TermKind, display: str) -> None:
        key = tuple(tokens)
        if not tokens or key in seen:
            return
        seen.add(key)
        out.append(IdentityTerm(spec.name, display, kind, _pattern(tokens)))

    def generated_ok(tokens: list[str]) -> bool:
        return _alnum_len(tokens) >= min_length and not all(t in stop for t in tokens)

    # Explicit names: the registry's own words.
    for value, kind in [(spec.name, "name"), *((a, "alias") for a in spec.aliases)]:
        toks = _tokens(value)
        if _alnum_len(toks) >= 2:
            add(toks, kind, value)  # type: ignore[arg-type]

    # Generated from the name (and aliases): version-stripped name, then the family word.
    for value in [spec.name, *spec.aliases]:
        toks = _tokens(value)
        words = [t for t in toks if not _NOISE_TOKEN.match(t) and t not in GENERIC_NAME_PARTS]
        if words and generated_ok(words):
            add(words, "variant", " ".join(words))
        lead = toks[0] if toks else ""
        if lead and not _NOISE_TOKEN.match(lead) and generated_ok([lead]):
            add([lead], "family", lead)

    org = spec.organization.strip()
    if org:
        toks = _tokens(org)
        if len(toks) == 1 and toks[0] in stop:
            # A common word as a company name: only its exact capitalised form counts.
            key = ("=" + org,)
            if key not in seen and len(org) >= 2:
                seen.add(key)
                out.append(
                    IdentityTerm(
                        spec.name,
                        org,
                        "organization",
                        _pattern(toks, case_sensitive_text=org),
                    )
                )
        elif _alnum_len(toks) >= 2:
            add(toks, "organization", org)
            for t in toks:
                if len(toks) > 1 and t not in stop and len(t) >= max(min_length, 4):
                    add([t], "organization", t)
    return out
