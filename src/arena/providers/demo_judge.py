"""Demo models as judges, so ``arena judge`` runs end to end offline.

A chat is a judge prompt when it asks for one of the verdict formats the judge's parser
reads (``arena.judge.verdicts``): a 1–10 score as ``[[rating]]``, a pairwise choice among
``[[A]]``, ``[[B]]`` and ``[[C]]``, or Arena-Hard's five levels ``[[A>>B]]`` … ``[[B>>A]]``.
A demo model answers such a chat with a short judgement ending in a well-formed verdict.
The verdict is drawn from a generator seeded by the model's name, the prompt and the seed:
the same call gives the same verdict, different answers give different ones, and none of
it means anything about the answers' quality.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import numpy as np

RATING = "rating"
PAIR = "pair"
GRADED_PAIR = "graded_pair"

_RATING_ASK = re.compile(r"\[\[\s*rating\s*\]\]", re.IGNORECASE)
_PAIR_ASK = (re.compile(r"\[\[\s*A\s*\]\]"), re.compile(r"\[\[\s*B\s*\]\]"))
_GRADED_ASK = re.compile(r"\[\[\s*A\s*>>\s*B\s*\]\]")

_OPENERS = (
    "A demo model wrote this judgement; it has random weights and reads nothing.",
    "Demo judge speaking: this verdict is drawn at random, for trying Arena out.",
    "This is a demo judge, so the reasoning below is for show only.",
    "Verdict from a demo model (random weights): not a real evaluation.",
)
_RATING_REMARKS = (
    (3, "The reply drifts away from what was asked and leaves most of it unanswered."),
    (6, "The reply covers part of the request but stays vague in places."),
    (8, "The reply is on topic and mostly clear, with room for more detail."),
    (10, "The reply addresses the request directly and reads clearly."),
)
_PAIR_REMARKS = {
    "A": "Assistant A stays closer to the question than assistant B.",
    "B": "Assistant B stays closer to the question than assistant A.",
    "C": "Neither reply is clearly better than the other.",
}
_GRADED_REMARKS = {
    "A>>B": "Assistant A is much more to the point than assistant B.",
    "A>B": "Assistant A is a little more useful than assistant B.",
    "A=B": "The two replies are about equally useful.",
    "B>A": "Assistant B is a little more useful than assistant A.",
    "B>>A": "Assistant B is much more to the point than assistant A.",
}
_GRADED_P = (0.15, 0.3, 0.1, 0.3, 0.15)
_PAIR_P = (0.42, 0.42, 0.16)


def verdict_format(text: str) -> str | None:
    """The verdict format ``text`` asks for (``rating``, ``pair``, ``graded_pair``) or None."""
    if _GRADED_ASK.search(text):
        return GRADED_PAIR
    if all(p.search(text) for p in _PAIR_ASK):
        return PAIR
    if _RATING_ASK.search(text):
        return RATING
    return None


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def judgement(model: str, prompt: str, *, kind: str, seed: int = 0) -> str:
    """A short judgement of ``prompt`` ending in a verdict of ``kind``."""
    rng = _rng("judge", model, prompt, seed)
    # Each demo judge has its own leniency, so two demo judges disagree a little.
    leniency = float(_rng("leniency", model).uniform(-1.0, 1.0))
    opener = _OPENERS[int(rng.integers(len(_OPENERS)))]
    if kind == RATING:
        score = int(np.clip(round(rng.normal(5.5 + leniency, 2.0)), 1, 10))
        remark = next(text for top, text in _RATING_REMARKS if score <= top)
        return f"{opener} {remark}\n\nRating: [[{score}]]"
    if kind == PAIR:
        choice = ("A", "B", "C")[int(rng.choice(3, p=_PAIR_P))]
        return f"{opener} {_PAIR_REMARKS[choice]}\n\nVerdict: [[{choice}]]"
    levels = tuple(_GRADED_REMARKS)
    level = levels[int(rng.choice(len(levels), p=_GRADED_P))]
    return f"{opener} {_GRADED_REMARKS[level]}\n\nMy final verdict: [[{level}]]"


def judgement_pieces(model: str, prompt: str, *, kind: str, seed: int = 0) -> Iterator[str]:
    """The judgement as streamed pieces: words with their leading whitespace."""
    yield from re.findall(r"\s*\S+", judgement(model, prompt, kind=kind, seed=seed))
