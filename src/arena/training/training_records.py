"""Battles → training records, and writing them.

SFT records hold one conversation each, in the OpenAI messages layout
(``{"messages": [{"role", "content"}, ...]}``) or the ShareGPT layout
(``{"conversations": [{"from": "human"|"gpt"|"system", "value"}, ...]}``). Which sides of a
battle become records: ``preferred`` (the winner's; both on a tie; none when both were bad)
or ``all``. Exact repeats of a conversation are written once.

Preference records are TRL's conversational preference layout: ``prompt`` (the messages
before the first answer), ``chosen`` and ``rejected`` (the rest of the winner's and the
loser's conversation), plus ``winner``, ``chosen_model``, ``rejected_model``,
``question_id`` and ``language``. Only anonymous battles count (a vote cast knowing the
names is not a blind preference). Ties and both-bad are dropped, or kept with ``keep_ties``
(``chosen`` is then side A, ``winner`` says it was a tie, and the trainers skip such rows).
A battle whose two sides do not share the same user messages is no comparison and is skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from arena import atomic_files
from arena.atomic_files import write_atomic

SFT_FORMATS = ("openai", "sharegpt")
SIDES = ("preferred", "all")
TIES = ("tie", "tie (bothbad)")
SHAREGPT_ROLES = {"user": "human", "assistant": "gpt", "system": "system"}


def _sides(row: dict[str, Any], sides: str) -> list[tuple[str, list[dict[str, str]]]]:
    a = (row.get("model_a", ""), row["conversation_a"])
    b = (row.get("model_b", ""), row["conversation_b"])
    if sides == "all":
        return [a, b]
    return {"model_a": [a], "model_b": [b], "tie": [a, b]}.get(row["winner"], [])


def to_sharegpt(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in messages]


def sft_records(
    rows: Iterable[dict[str, Any]],
    *,
    fmt: str = "openai",
    sides: str = "preferred",
    counts: Counter[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """One record per kept conversation side (see the module docstring)."""
    if fmt not in SFT_FORMATS:
        raise ValueError(f"format must be one of {SFT_FORMATS}, got {fmt!r}")
    if sides not in SIDES:
        raise ValueError(f"sides must be one of {SIDES}, got {sides!r}")
    counts = counts if counts is not None else Counter()
    seen: set[str] = set()
    for row in rows:
        if sides == "preferred" and row["winner"] == "tie (bothbad)":
            counts["both_bad"] += 1
            continue
        for model, messages in _sides(row, sides):
            messages = [m for m in messages if m["role"] in SHAREGPT_ROLES]
            if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
                counts["no_answer"] += 1
                continue
            key = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
            if key in seen:
                counts["repeated"] += 1
                continue
            seen.add(key)
            record: dict[str, Any] = (
                {"messages": messages}
                if fmt == "openai"
                else {"conversations": to_sharegpt(messages)}
            )
            record.update(
                model=model,
                question_id=row.get("question_id"),
                language=row.get("language") or "unknown",
            )
            counts["written"] += 1
            yield record


def _split(messages: list[dict[str, str]]) -> tuple[list, list]:
    first = next((i for i, m in enumerate(messages) if m["role"] == "assistant"), len(messages))
    return messages[:first], messages[first:]


def _user_turns(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] != "assistant"]


def preference_records(
    rows: Iterable[dict[str, Any]],
    *,
    keep_ties: bool = False,
    counts: Counter[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Chosen/rejected pairs from anonymous votes (see the module docstring)."""
    counts = counts if counts is not None else Counter()
    for row in rows:
        if not row.get("anony", True):
            counts["named"] += 1
            continue
        winner = row["winner"]
        if winner in TIES and not keep_ties:
            counts["tie"] += 1
            continue
        a, b = row["conversation_a"], row["conversation_b"]
        prompt_a, rest_a = _split(a)
        prompt_b, rest_b = _split(b)
        if prompt_a != prompt_b or _user_turns(a) != _user_turns(b) or not prompt_a:
            counts["different_prompts"] += 1
            continue
        if not rest_a or not rest_b:
            counts["no_answer"] += 1
            continue
        a_wins = winner != "model_b"
        chosen, rejected = (rest_a, rest_b) if a_wins else (rest_b, rest_a)
        models = (row.get("model_a"), row.get("model_b"))
        counts["written"] += 1
        yield {
            "prompt": prompt_a,
            "chosen": chosen,
            "rejected": rejected,
            "winner": winner,
            "chosen_model": models[0] if a_wins else models[1],
            "rejected_model": models[1] if a_wins else models[0],
            "question_id": row.get("question_id"),
            "language": row.get("language") or "unknown",
        }


def write_jsonl(records: Iterable[dict[str, Any]], out: Path) -> int:
    """Write ``records`` as JSON Lines atomically (a failed export leaves no partial file)."""
    return write_atomic(Path(out), lambda tmp: atomic_files.write_jsonl(records, tmp))
