"""Demo models as labellers, so ``arena pipeline run --labeller demo-…`` works offline.

A chat is a labeller prompt when it ends by asking for JSON of a given shape, as the
pipeline's prompts do (``pipeline/prompts/``)::

    Reply with JSON of this shape, ...
    {"math": true|false}            or            {"score": 0-5}

A demo model answers with an object of that shape whose values are drawn from a generator
seeded by the model's name and the prompt: the same call gives the same labels, and the
labels mean nothing about the prompt. A notice after the object says so.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

_ASK = re.compile(r"Reply with JSON of this shape[^\n]*\n\s*(\{[^\n]*\})")
_BOOL_FIELD = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:\s*true\|false')
_RANGE_FIELD = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*:\s*(\d+)-(\d+)')
NOTICE = "(Demo labeller with random weights: these labels are drawn at random.)"


def labeller_shape(text: str) -> list[tuple[str, Any]] | None:
    """The fields a labeller prompt asks for: (name, "bool") or (name, (low, high))."""
    match = _ASK.search(text)
    if match is None:
        return None
    template = match.group(1)
    fields: list[tuple[str, Any]] = [(m.group(1), "bool") for m in _BOOL_FIELD.finditer(template)]
    fields += [
        (m.group(1), (int(m.group(2)), int(m.group(3)))) for m in _RANGE_FIELD.finditer(template)
    ]
    return fields or None


def labels(model: str, prompt: str, *, seed: int = 0) -> str:
    """The answer to a labeller prompt: a JSON object of the asked shape, then a notice."""
    digest = hashlib.sha256(f"label\x1f{model}\x1f{prompt}\x1f{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    answer: dict[str, Any] = {}
    for name, kind in labeller_shape(prompt) or []:
        if kind == "bool":
            answer[name] = bool(rng.random() < 0.5)
        else:
            answer[name] = int(rng.integers(kind[0], kind[1] + 1))
    return f"{json.dumps(answer)}\n\n{NOTICE}"


def label_pieces(model: str, prompt: str, *, seed: int = 0) -> Iterator[str]:
    """The answer as streamed pieces: runs of non-space with their leading whitespace."""
    yield from re.findall(r"\s*\S+", labels(model, prompt, seed=seed))
