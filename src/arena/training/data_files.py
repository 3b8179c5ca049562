"""Training files read back and checked: SFT conversations and preference pairs.

Accepted SFT layouts, one record per line (JSON Lines), or a JSON array, or Parquet:
``{"messages": [{"role", "content"}, ...]}`` (OpenAI), ``{"conversations": [{"from",
"value"}, ...]}`` (ShareGPT) and conversational ``{"prompt": [...], "completion": [...]}``.
Preference records are ``{"prompt", "chosen", "rejected"}``, each a list of messages (TRL's
conversational layout, what ``arena export preferences`` writes) or each a string; records
marked as ties (``winner``) are skipped. A record in another layout is a ``DataLayoutError``
naming its line, so a wrong file fails before any model loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROLES = ("system", "user", "assistant")
FROM_SHAREGPT = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
FROM_SHAREGPT["system"] = "system"
TIES = ("tie", "tie (bothbad)")


class DataLayoutError(ValueError):
    """A training file that is missing, unreadable or in the wrong layout."""


def read_records(path: Path) -> list[tuple[str, Any]]:
    """``(where, record)`` pairs of a JSON Lines, JSON array or Parquet file."""
    path = Path(path)
    if not path.is_file():
        raise DataLayoutError(f"no data file at {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except OSError as e:
            raise DataLayoutError(f"cannot read {path} as Parquet: {e}") from None
        return [(f"{path} row {i + 1}", row) for i, row in enumerate(rows)]
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as e:
            raise DataLayoutError(f"{path}: not valid JSON: {e}") from None
        return [(f"{path} item {i + 1}", item) for i, item in enumerate(items)]
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                out.append((f"{path} line {number}", json.loads(line)))
            except ValueError as e:
                raise DataLayoutError(f"{path} line {number}: not valid JSON: {e}") from None
    return out


def _messages(value: Any, where: str, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise DataLayoutError(f"{where}: {field} must be a non-empty list of messages")
    out = []
    for message in value:
        if not isinstance(message, dict):
            raise DataLayoutError(f"{where}: {field} holds a message that is not an object")
        if "from" in message and "role" not in message:
            role = FROM_SHAREGPT.get(str(message.get("from")))
            content = message.get("value")
        else:
            role, content = message.get("role"), message.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise DataLayoutError(
                f"{where}: {field} holds a message without a system/user/assistant role and "
                "text content"
            )
        out.append({"role": role, "content": content})
    return out


def sft_conversation(record: Any, where: str) -> list[dict[str, str]]:
    """The conversation of one SFT record (any accepted layout)."""
    if not isinstance(record, dict):
        raise DataLayoutError(f"{where}: a record must be a JSON object")
    if "messages" in record:
        messages = _messages(record["messages"], where, "messages")
    elif "conversations" in record:
        messages = _messages(record["conversations"], where, "conversations")
    elif isinstance(record.get("prompt"), list) and isinstance(record.get("completion"), list):
        messages = _messages(record["prompt"] + record["completion"], where, "prompt+completion")
    else:
        raise DataLayoutError(
            f"{where}: not an SFT record; expected `messages` (OpenAI), `conversations` "
            "(ShareGPT) or a conversational prompt/completion — is this a preference file?"
        )
    if not any(m["role"] == "assistant" for m in messages):
        raise DataLayoutError(f"{where}: the conversation has no assistant message to learn")
    return messages


def sft_conversations(path: Path) -> list[list[dict[str, str]]]:
    records = read_records(path)
    if not records:
        raise DataLayoutError(f"{path} holds no records")
    return [sft_conversation(record, where) for where, record in records]


def per_turn_examples(messages: list[dict[str, str]]) -> list[dict[str, list]]:
    """One conversational prompt/completion example per assistant turn: loss on that answer
    only, for chat templates without TRL's ``{% generation %}`` markers."""
    return [
        {"prompt": messages[:i], "completion": [message]}
        for i, message in enumerate(messages)
        if message["role"] == "assistant" and i > 0
    ]


def _side(value: Any, where: str, field: str, *, conversational: bool) -> Any:
    if conversational:
        return _messages(value, where, field)
    if not isinstance(value, str) or not value:
        raise DataLayoutError(f"{where}: {field} must be text, like the other fields")
    return value


def preference_pairs(path: Path) -> tuple[list[dict[str, Any]], int]:
    """``(pairs, ties skipped)``: prompt/chosen/rejected records, checked."""
    records = read_records(path)
    pairs, ties = [], 0
    for where, record in records:
        if not isinstance(record, dict) or not all(
            k in record for k in ("prompt", "chosen", "rejected")
        ):
            raise DataLayoutError(
                f"{where}: not a preference record; expected prompt, chosen and rejected "
                "(`arena export preferences` writes them) — is this an SFT file?"
            )
        if record.get("winner") in TIES:
            ties += 1
            continue
        conversational = isinstance(record["prompt"], list)
        pairs.append(
            {
                field: _side(record[field], where, field, conversational=conversational)
                for field in ("prompt", "chosen", "rejected")
            }
        )
    if not pairs:
        raise DataLayoutError(f"{path} holds no preference pairs (ties skipped: {ties})")
    return pairs, ties
