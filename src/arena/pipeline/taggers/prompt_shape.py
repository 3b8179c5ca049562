"""Shape of a battle's prompts: multi-turn, long query (as the leaderboard defines them:
more than one turn; at least ``LONG_QUERY_TOKENS`` prompt tokens, counted the same way)."""

from __future__ import annotations

from collections.abc import Sequence

from arena.leaderboard.battle_columns import LONG_QUERY_TOKENS
from arena.pipeline.markdown_stats import approx_token_count
from arena.pipeline.tags import DeterministicTagger, PromptRecord, Tag


def _multi_turn(record: PromptRecord) -> Sequence[Tag]:
    return [Tag("multi_turn", record.turns > 1)]


def _long_query(record: PromptRecord) -> Sequence[Tag]:
    tokens = sum(approx_token_count(p) for p in record.prompts)
    return [Tag("long_query", tokens >= LONG_QUERY_TOKENS)]


MULTI_TURN = DeterministicTagger(
    name="multi_turn", version="1", tag_names=("multi_turn",), run=_multi_turn
)
LONG_QUERY = DeterministicTagger(
    name="long_query", version="1", tag_names=("long_query",), run=_long_query
)
