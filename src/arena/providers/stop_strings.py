"""Stop strings for backends that generate text themselves (demo and local models).

Text arrives in pieces; a stop string may straddle two pieces. ``StopMatcher`` releases text
as soon as it can no longer be the start of a stop string, holds back the rest, and reports
when a stop string completed (the stop string itself is never emitted, as in OpenAI's API).
"""

from __future__ import annotations


class StopMatcher:
    __slots__ = ("_held", "_longest", "_stops", "stopped")

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._longest = max((len(s) for s in self._stops), default=0)
        self._held = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Add generated text; return the part that is safe to emit now."""
        if self.stopped:
            return ""
        if not self._stops:
            return piece
        text = self._held + piece
        cut = min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._held = ""
            return text[:cut]
        keep = 0
        # Hold back the longest tail that is a prefix of some stop string.
        for size in range(min(self._longest - 1, len(text)), 0, -1):
            tail = text[-size:]
            if any(s.startswith(tail) for s in self._stops):
                keep = size
                break
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        """At the end of generation: the held-back text was not a stop string after all."""
        held, self._held = self._held, ""
        return "" if self.stopped else held
