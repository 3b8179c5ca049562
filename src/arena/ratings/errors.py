"""Typed errors of the rating engine.

They subclass both the project's ``BadRequest`` (so a web layer maps them to 400) and
``ValueError`` (so plain callers catching ``ValueError`` see them too).
"""

from __future__ import annotations

from arena.errors import BadRequest


class RatingInputError(BadRequest, ValueError):
    """The battles given cannot be rated as asked (bad values, shapes, empty input)."""

    code = "invalid_battles"


class DegenerateComparisonError(RatingInputError):
    """No finite maximum-likelihood solution exists (e.g. a model that only ever won)."""

    code = "degenerate_comparisons"
