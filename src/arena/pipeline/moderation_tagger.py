"""The moderation tag: each battle's user turns checked by the configured moderation hook.

Live chats are screened before they reach a model (``battles/moderation.py``); this tagger
asks the same kind of ``Moderator`` about battles already stored (imported ones, or ones
collected before a hook was set up), so the export's ``moderation`` field and any filter on
it are filled for every battle. The hook is what ``arena serve`` configures
(``ARENA_BLOCKED_WORDS_PATH``: a word list) or any ``Moderator`` the caller passes, such as
``providers.moderation.OpenAIModerationClient``.

Tag ``moderation``: ``{"flagged": bool, "categories": [str], "flagged_turns": [int]}``
(turns counted from 1). A check that failed (``result.error``) makes the tag ``error``, so
the battle is checked again next run rather than recorded as clean. The version carries a
fingerprint of the hook (the word list, or the service URL and model), so a changed list
re-checks every battle.

The word list (``WordListModerator``) gives a ``DeterministicTagger`` (``word_list_tagger``)
that runs with the other deterministic taggers; a moderation service gives a
``LabellerTagger`` (``moderation_tagger``) that never uses the labeller's ``ask``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from arena.battles.moderation import (
    ModerationResult,
    Moderator,
    WordListModerator,
    parse_word_list,
)
from arena.pipeline.llm_verdicts import excerpt
from arena.pipeline.tags import DeterministicTagger, LabellerTagger, PromptRecord, Tag

NAME = "moderation"
TAG_NAME = "moderation"
DESCRIPTION = "User turns checked by the configured moderation hook."


def moderator_fingerprint(moderator: Moderator) -> str:
    """What identifies the hook's decisions: its word pattern, or its service and model."""
    if isinstance(moderator, WordListModerator):
        pattern = moderator._pattern.pattern if moderator._pattern is not None else ""
        material = f"words:{moderator.category}:{pattern}"
    else:
        url = getattr(moderator, "url", "")
        model = getattr(moderator, "model", "")
        material = f"{type(moderator).__name__}:{url}:{model}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:8]


def _turns(record: PromptRecord) -> list[tuple[int, str]]:
    return [(turn, p) for turn, p in enumerate(record.prompts, 1) if p.strip()]


def _fold(results: list[tuple[int, ModerationResult]]) -> list[Tag]:
    """The battle's tag from its turns' results; any failed check makes it ``error``."""
    flagged_turns: list[int] = []
    categories: list[str] = []
    for turn, result in results:
        if result.error:
            return [Tag(TAG_NAME, None, "error", excerpt(result.error))]
        if result.flagged:
            flagged_turns.append(turn)
            categories.extend(c for c in result.categories if c not in categories)
    value = {
        "flagged": bool(flagged_turns),
        "categories": categories,
        "flagged_turns": flagged_turns,
    }
    return [Tag(TAG_NAME, value)]


def _version(moderator: Moderator) -> str:
    return "1-" + moderator_fingerprint(moderator)


def moderation_tagger(moderator: Moderator) -> LabellerTagger:
    """An async tagger asking ``moderator`` (a service) about every non-empty user turn."""

    async def run(
        record: PromptRecord, ask: Callable[[str], Awaitable[str]] | None = None
    ) -> Sequence[Tag]:
        results = []
        for turn, prompt in _turns(record):
            result = await moderator.check(prompt)
            results.append((turn, result))
            if result.error:
                break
        return _fold(results)

    return LabellerTagger(NAME, _version(moderator), (TAG_NAME,), run, DESCRIPTION)


def word_list_tagger(moderator: WordListModerator) -> DeterministicTagger:
    """The same tag from a word list, checked without a loop (it runs with the
    deterministic taggers, whether or not a labeller model is configured)."""

    def run(record: PromptRecord) -> Sequence[Tag]:
        return _fold([(turn, moderator.check_sync(p)) for turn, p in _turns(record)])

    return DeterministicTagger(NAME, _version(moderator), (TAG_NAME,), run)


def moderator_from_settings(settings: Any) -> Moderator | None:
    """The hook ``arena serve`` would use: the blocked-words list, when one is configured.

    Raises ``OSError`` when the configured file cannot be read (the caller reports it).
    """
    path = getattr(settings, "blocked_words_path", None)
    if path is None:
        return None
    return WordListModerator(parse_word_list(path.read_text(encoding="utf-8")))


def moderation_taggers(settings: Any) -> tuple[DeterministicTagger, ...]:
    """The moderation tagger for the hook ``settings`` configure; none without a hook."""
    moderator = moderator_from_settings(settings)
    return () if moderator is None else (word_list_tagger(moderator),)
