"""Parsing JSON request bodies with bounded nesting, for the gateway and the arena web API.

orjson refuses documents nested over 1,024 levels, but what it accepts can still be too deep
for what comes next: orjson itself serializes at most 255 levels (a request forwarded
upstream), and the standard library's encoder stops at the interpreter's recursion limit.
A body nested deeper than any real request is refused here, as a 400, before it goes on.
"""

from __future__ import annotations

from typing import Any

import orjson

from arena.errors import BadRequest

# Real requests stay far below this: a tool's JSON schema nested ten objects deep is about
# 25 levels. Well under orjson's 255-level serializer limit, with room for the wrapping
# a provider adds around forwarded fields.
MAX_JSON_DEPTH = 64


def json_depth(doc: Any, *, stop_after: int | None = None) -> int:
    """How deeply arrays and objects nest in ``doc`` (a scalar is 0, ``[]`` is 1).

    Level by level, without recursion, so no document can exhaust the stack; stops as soon
    as a level past ``stop_after`` holds a container.
    """
    depth = 0
    level = [doc] if doc.__class__ is dict or doc.__class__ is list else []
    while level:
        depth += 1
        if stop_after is not None and depth > stop_after:
            break
        below = []
        for node in level:
            # Exact class checks: orjson only makes dict and list, and they are the fastest.
            for child in node.values() if node.__class__ is dict else node:
                if child.__class__ is dict or child.__class__ is list:
                    below.append(child)
        level = below
    return depth


def loads_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The parsed body; ``BadRequest`` (code ``malformed_json``) when it is not JSON or
    nests deeper than ``max_depth``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(
            f"The request body is not valid JSON: {e}.", code="malformed_json"
        ) from None
    if json_depth(doc, stop_after=max_depth) > max_depth:
        raise BadRequest(
            f"The request body nests arrays and objects more than {max_depth} levels deep; "
            f"at most {max_depth} are accepted.",
            code="malformed_json",
        )
    return doc
