"""Operator files in YAML (the model registry, red-team challenges): read, validate with a
pydantic model, and report every problem at once, naming list items by their name field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path, error: type[Exception], what: str) -> Any:
    """The parsed document of ``path``; ``error`` says why it could not be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise error(f"{path} is not valid YAML: {e}") from None


def validate_document(
    doc: Any,
    model: type[M],
    *,
    source: str,
    error: type[Exception],
    list_key: str,
    label: Callable[[int, Any], str | None],
    name_key: str,
    drop: tuple[str, ...] = (),
    message: Callable[[str], str] = lambda m: m,
) -> M:
    """``model`` validated from ``doc``, or ``error`` listing every problem, one a line.

    An item of the ``list_key`` list is named ``label(index, its name_key value)`` (None keeps
    the dotted path); ``drop``: union tags pydantic puts in paths that the operator never wrote."""
    if not isinstance(doc, dict):
        raise error(f"{source}: the top level must be a mapping with a '{list_key}' list")
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        lines = []
        for problem in e.errors():
            loc = list(problem["loc"])
            in_list = len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int)
            if in_list and len(loc) >= 3 and loc[2] in drop:
                del loc[2]
            where = ".".join(str(p) for p in loc) or "(file)"
            if in_list:
                try:
                    name = doc[list_key][loc[1]].get(name_key)
                except (KeyError, IndexError, TypeError, AttributeError):
                    name = None
                head = label(loc[1], name)
                if head:
                    where = head + "".join(f".{p}" for p in loc[2:])
            lines.append(f"  - {where}: {message(problem['msg'])}")
        raise error(f"{source} is invalid:\n" + "\n".join(lines)) from None
