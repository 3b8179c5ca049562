"""A normalised hash of a battle's prompts: the same question typed with other spacing or
capitals hashes alike, so dedup can count repeats. Unicode is NFKC-folded, case-folded and
whitespace runs collapsed; turns are joined with a separator no prompt can contain."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

from arena.pipeline.tags import DeterministicTagger, PromptRecord, Tag

_SPACE = re.compile(r"\s+")
# Python counts \x1e as whitespace, so no normalised prompt contains it: a safe separator.
_TURN_SEPARATOR = "\x1e"


def normalise(text: str) -> str:
    """Fold Unicode compatibility forms, case and whitespace."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", folded).strip()


def prompt_hash(prompts: Sequence[str]) -> str:
    """sha256 (hex) of the normalised prompts in turn order."""
    joined = _TURN_SEPARATOR.join(normalise(p) for p in prompts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def _run(record: PromptRecord) -> Sequence[Tag]:
    return [Tag("prompt_hash", prompt_hash(record.prompts))]


PROMPT_HASH = DeterministicTagger(
    name="prompt_hash", version="1", tag_names=("prompt_hash",), run=_run
)
