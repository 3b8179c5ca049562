"""Dedup tags: down-weight prompts asked far more often than others.

As in the public clean-battle layout's ``dedup_tag``: prompts (by normalised hash) whose
repeat count lies above the 99.9th percentile of all prompts' counts are ``high_freq``; of
each such prompt only as many battles as that percentile are kept (``sampled``), the rest
are ``sampled: false``. Every other battle is ``{"high_freq": false, "sampled": true}``.
The leaderboard's ``--dedup-sampled`` filter keeps sampled battles only.

Which battles of a frequent prompt are kept is decided by a hash of the battle id, so a
rerun over the same battles keeps the same ones, and a new battle does not reshuffle the rest
beyond the one place it takes.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

DEDUP_TAG = "dedup"
DEDUP_TAGGER = "dedup"
DEDUP_VERSION = "1"
PERCENTILE = 99.9
MIN_REPEATS = 2  # a prompt asked once is never "frequent", whatever the percentile says


def _rank(battle_id: str) -> str:
    return hashlib.sha256(battle_id.encode("utf-8")).hexdigest()


def dedup_tags(
    hashes: Iterable[tuple[str, str]], *, percentile: float = PERCENTILE
) -> dict[str, dict[str, Any]]:
    """``(battle_id, prompt_hash)`` pairs → ``{battle_id: {"high_freq", "sampled"}}``."""
    by_prompt: dict[str, list[str]] = defaultdict(list)
    for battle_id, digest in hashes:
        by_prompt[digest].append(battle_id)
    if not by_prompt:
        return {}
    counts = np.fromiter((len(ids) for ids in by_prompt.values()), dtype=np.int64)
    threshold = float(np.percentile(counts, percentile))
    keep = max(1, math.floor(threshold))
    out: dict[str, dict[str, Any]] = {}
    for ids in by_prompt.values():
        if len(ids) <= threshold or len(ids) < MIN_REPEATS:
            for battle_id in ids:
                out[battle_id] = {"high_freq": False, "sampled": True}
            continue
        kept = set(sorted(ids, key=_rank)[:keep])
        for battle_id in ids:
            out[battle_id] = {"high_freq": True, "sampled": battle_id in kept}
    return out


def changed(
    computed: Mapping[str, dict[str, Any]], stored: Mapping[str, tuple[Any, str]]
) -> dict[str, dict[str, Any]]:
    """The computed tags that differ from the stored ``(value, version)`` ones."""
    return {
        battle_id: value
        for battle_id, value in computed.items()
        if stored.get(battle_id) != (value, DEDUP_VERSION)
    }
