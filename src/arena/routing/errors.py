"""The one error type of routing: bad input (files, names, parameters), a 400."""

from __future__ import annotations

from arena.errors import BadRequest


class RoutingError(BadRequest):
    """Unusable routing input; the message says what to fix."""
