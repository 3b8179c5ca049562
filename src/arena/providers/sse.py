"""Server-sent events, decoded from the bytes of an upstream response.

The rules are the event-stream format's: a line ends with CR, LF or CR LF; a blank line
ends an event; ``data`` lines are joined with a newline; a line starting with ``:`` is a
comment; one space after the field's colon is dropped; an event cut off by the end of the
stream is discarded. ``event``, ``data`` and ``id`` are kept, other fields ignored.

Decoding works on whole network reads rather than line by line: one read usually holds
many complete events, so the per-event cost is a split and a few comparisons. That cost is
paid for every chunk of every answer the gateway relays.
"""

from __future__ import annotations

from typing import NamedTuple


class ServerSentEvent(NamedTuple):
    # A tuple, not a frozen dataclass: one is built per event, and this builds faster.
    event: str = "message"
    data: str = ""
    id: str = ""


class EventDecoder:
    """Feed it the stream's bytes in any pieces; it returns the events each piece ends."""

    __slots__ = ("_after_cr", "_data", "_event", "_id", "_pending")

    def __init__(self) -> None:
        self._pending = b""  # an unfinished line
        self._after_cr = False  # the last read ended in CR: an LF opening the next is its pair
        self._event = b""
        self._data: list[bytes] = []
        self._id = b""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]  # the LF of a CR LF pair split between two reads
        self._after_cr = chunk[-1:] == b"\r"
        text = self._pending + chunk if self._pending else chunk
        if b"\r" in text:
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = text.split(b"\n")
        self._pending = lines.pop()
        events: list[ServerSentEvent] = []
        for line in lines:
            if not line:
                if self._data or self._event:
                    events.append(self._dispatch())
                continue
            if line[0] == 58:  # ":" starts a comment
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data.append(value)
            elif name == b"event":
                self._event = value
            elif name == b"id" and b"\0" not in value:
                self._id = value
        return events

    def _dispatch(self) -> ServerSentEvent:
        parts = self._data
        data = (parts[0] if len(parts) == 1 else b"\n".join(parts)).decode("utf-8", "replace")
        event = self._event.decode("utf-8", "replace") or "message"
        self._event = b""
        self._data = []
        return ServerSentEvent(event, data, self._id.decode("utf-8", "replace"))
