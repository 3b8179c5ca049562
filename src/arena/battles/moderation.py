"""Moderation decisions for user input: the ``Moderator`` protocol and a local word list.

A moderator answers ``await check(text) -> ModerationResult``. The web layer asks before a
message goes to any model; a flagged message is refused with ``result.message`` (see
``raise_if_flagged``) and never sent on. Moderators that call a service live in
``arena.providers.moderation``; everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from arena.errors import BadRequest

DEFAULT_FLAGGED_MESSAGE = (
    "Your message was flagged by our moderation filter and was not sent to the models. "
    "Please rephrase it."
)


@dataclass(frozen=True, slots=True)
class ModerationResult:
    """``flagged`` decides; ``categories`` says why; ``message`` is what the user sees.

    ``error`` is set when the check itself failed and the result comes from the
    fail-open / fail-closed policy rather than from a real verdict.
    """

    flagged: bool
    categories: tuple[str, ...] = ()
    message: str | None = None
    error: str | None = None

    @classmethod
    def clean(cls) -> ModerationResult:
        return cls(flagged=False)


@runtime_checkable
class Moderator(Protocol):
    async def check(self, text: str) -> ModerationResult:
        """Judge one piece of user input."""
        ...


def raise_if_flagged(result: ModerationResult) -> None:
    """Turn a flagged result into the error the web layer returns (400, ``content_flagged``)."""
    if result.flagged:
        raise BadRequest(
            result.message or DEFAULT_FLAGGED_MESSAGE, param="prompt", code="content_flagged"
        )


def parse_word_list(text: str) -> list[str]:
    """Entries from a word-list file's text: one word or phrase per line, ``#`` comments."""
    out = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            out.append(entry)
    return out


class WordListModerator:
    """Flags text containing any listed word or phrase (whole words, case-insensitive).

    Phrases match across any run of whitespace ("bad  word" matches "bad word"). The list
    comes from the caller (``parse_word_list`` reads the usual one-per-line format).
    """

    def __init__(
        self,
        words: Iterable[str],
        *,
        category: str = "blocked_words",
        message: str = DEFAULT_FLAGGED_MESSAGE,
    ):
        entries = sorted({w.strip().casefold() for w in words if w.strip()}, key=len, reverse=True)
        self.category = category
        self.message = message
        self._pattern: re.Pattern[str] | None = None
        if entries:
            alternatives = "|".join(r"\s+".join(map(re.escape, e.split())) for e in entries)
            self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)

    def matches(self, text: str) -> list[str]:
        """The listed entries found in ``text`` (lower-cased, in order of appearance)."""
        if self._pattern is None:
            return []
        return [" ".join(m.group(0).casefold().split()) for m in self._pattern.finditer(text)]

    def check_sync(self, text: str) -> ModerationResult:
        if self.matches(text):
            return ModerationResult(flagged=True, categories=(self.category,), message=self.message)
        return ModerationResult.clean()

    async def check(self, text: str) -> ModerationResult:
        return self.check_sync(text)


class CombinedModerator:
    """Asks several moderators in turn; the first flagged result wins.

    A failed check (``error`` set) that its policy let through does not stop the others.
    """

    def __init__(self, moderators: Sequence[Moderator]):
        self.moderators = tuple(moderators)

    async def check(self, text: str) -> ModerationResult:
        errors = []
        for moderator in self.moderators:
            result = await moderator.check(text)
            if result.flagged:
                return result
            if result.error:
                errors.append(result.error)
        return ModerationResult(flagged=False, error="; ".join(errors) or None)
