"""Deterministic taggers: each a versioned pure function of a battle's prompts."""

from __future__ import annotations

from arena.pipeline.taggers.coding import CODING
from arena.pipeline.taggers.language import LANGUAGE
from arena.pipeline.taggers.prompt_hash import PROMPT_HASH
from arena.pipeline.taggers.prompt_shape import LONG_QUERY, MULTI_TURN

DETERMINISTIC_TAGGERS = (LANGUAGE, CODING, MULTI_TURN, LONG_QUERY, PROMPT_HASH)

__all__ = ["CODING", "DETERMINISTIC_TAGGERS", "LANGUAGE", "LONG_QUERY", "MULTI_TURN", "PROMPT_HASH"]
