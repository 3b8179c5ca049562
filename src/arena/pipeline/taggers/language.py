"""Language of a battle's prompts, by ``py3langid`` (a naive Bayes model shipped inside the
package: no download, works offline).

Code blocks and inline code are removed first: identifiers and keywords would otherwise pull
a coding question towards whatever language its variable names look like. Text with too
few letters, or where the model is unsure, is ``unknown`` rather than a guess.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from arena.pipeline.taggers.language_names import language_name
from arena.pipeline.tags import DeterministicTagger, PromptRecord, Tag

UNKNOWN = "unknown"
MIN_LETTERS = 3
MIN_CONFIDENCE = 0.2
MAX_CHARS = 4000  # the first few thousand characters decide; long pastes add nothing
_FENCED = re.compile(r"(```|~~~).*?(\1|\Z)", re.DOTALL)
_INLINE = re.compile(r"`[^`\n]*`")
_URL = re.compile(r"https?://\S+")


@functools.cache
def _identifier() -> Any:
    """The model, loaded once per process (about half a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def prose(text: str) -> str:
    """The text without code blocks, inline code and URLs."""
    return _URL.sub(" ", _INLINE.sub(" ", _FENCED.sub(" ", text)))


def detect_language(text: str) -> str:
    """English name of the text's language, or ``unknown``."""
    body = prose(text)[:MAX_CHARS]
    if sum(ch.isalpha() for ch in body) < MIN_LETTERS:
        return UNKNOWN
    # Varieties of one language (Arabic dialects, Chinese ones) share one name: their
    # probabilities add up before the most likely name is chosen.
    by_name: dict[str, float] = {}
    for code, probability in _identifier().rank(body)[:8]:
        name = language_name(code)
        by_name[name] = by_name.get(name, 0.0) + probability
    name, confidence = max(by_name.items(), key=lambda item: item[1])
    return name if confidence >= MIN_CONFIDENCE else UNKNOWN


def _run(record: PromptRecord) -> Sequence[Tag]:
    return [Tag("language", detect_language("\n".join(record.prompts)))]


LANGUAGE = DeterministicTagger(name="language", version="1", tag_names=("language",), run=_run)
