"""Pinpointing the first bad battle in a JSON or JSON Lines file.

The fast readers (PyArrow, Polars) and the column checks in ``battle_normalize`` only say
*that* a block of the file is bad, often as "Syntax at character 0". Once they have refused a
file, this module rescans it with orjson — JSON Lines one line at a time, a JSON array as one
document — and names the 1-based line (and column, for syntax errors) of the first battle
that is not valid JSON, not an object, or lacks a usable ``model_a``/``model_b``/``winner``.
Nothing here runs on the good path, so it costs nothing when the file loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from arena.errors import BadRequest

REQUIRED_NAMES = ("model_a", "model_b")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def battle_problem(value: Any, valid_winners: tuple[str, ...]) -> str | None:
    """Why one decoded battle cannot be used, or None when it can."""
    if not isinstance(value, Mapping):
        return f"expected a JSON object, got {_json_type(value)}"
    for key in REQUIRED_NAMES:
        if key not in value:
            return f"missing required field {key!r}"
        name = value[key]
        # Names may be numbers in odd dumps (they are cast to text), never null or nested.
        if name is None or isinstance(name, bool | list | Mapping):
            return f"field {key!r} must be a model name, got {_json_type(name)}"
    if "winner" not in value:
        return "missing required field 'winner'"
    if value["winner"] not in valid_winners:
        return (
            f"field 'winner' is {orjson.dumps(value['winner']).decode()}, "
            f"expected one of {', '.join(valid_winners)}"
        )
    return None


def _syntax_error(path: Path, where: str, error: orjson.JSONDecodeError) -> BadRequest:
    return BadRequest(
        f"cannot read battles from {path}: {where}, column {error.colno}: "
        f"not valid JSON ({error.msg})",
        param="battles",
    )


def first_bad_line(path: Path, valid_winners: tuple[str, ...]) -> BadRequest | None:
    """The error naming the first unusable line of a JSON Lines file, or None if all are fine."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                where = f"line {number}"
                if "end of data" in e.msg:
                    where += " (cut short)"
                return _syntax_error(path, where, e)
            problem = battle_problem(value, valid_winners)
            if problem:
                return BadRequest(
                    f"bad battle in {path} at line {number}: {problem}", param="battles"
                )
    return None


def first_bad_item(path: Path, valid_winners: tuple[str, ...]) -> BadRequest | None:
    """The error naming the syntax error or first unusable item of a JSON array file."""
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        return _syntax_error(path, f"line {e.lineno}", e)
    if not isinstance(document, list):
        return None
    for number, item in enumerate(document, start=1):
        problem = battle_problem(item, valid_winners)
        if problem:
            # Items carry no line once decoded; their position in the array is exact enough.
            return BadRequest(f"bad battle in {path} at item {number}: {problem}", param="battles")
    return None
