"""The event-stream decoder: every line ending, any split of the bytes, the spec's fields."""

from __future__ import annotations

import pytest

from arena.providers.sse import EventDecoder, ServerSentEvent

STREAM = (
    b": a comment\n"
    b'data: {"a": 1}\n\n'
    b"event: content_block_delta\n"
    b"data: first line\n"
    b"data:second line\n"
    b"id: 7\n"
    b"retry: 100\n"
    b"\n"
    b"data:  two spaces keep one\n\n"
    b"event: ping\n\n"
    b"data: \xc3\xa9t\xc3\xa9\n\n"
    b"data: cut off by the end"
)
EXPECTED = [
    ServerSentEvent("message", '{"a": 1}', ""),
    ServerSentEvent("content_block_delta", "first line\nsecond line", "7"),
    ServerSentEvent("message", " two spaces keep one", "7"),
    ServerSentEvent("ping", "", "7"),
    ServerSentEvent("message", "été", "7"),
]


def decode(pieces: list[bytes]) -> list[ServerSentEvent]:
    decoder = EventDecoder()
    return [event for piece in pieces for event in decoder.feed(piece)]


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_whole_stream_with_each_line_ending(ending: bytes) -> None:
    assert decode([STREAM.replace(b"\n", ending)]) == EXPECTED


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_every_split_point_gives_the_same_events(ending: bytes) -> None:
    stream = STREAM.replace(b"\n", ending)
    for cut in range(1, len(stream)):
        assert decode([stream[:cut], stream[cut:]]) == EXPECTED, cut


def test_byte_by_byte() -> None:
    stream = STREAM.replace(b"\n", b"\r\n")
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == EXPECTED


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert decode([b"\n\n\r\n: only a comment\n\n"]) == []


def test_an_event_ended_by_cr_is_not_held_back_for_the_next_read() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"data: now\r\r") == [ServerSentEvent("message", "now", "")]
    assert decoder.feed(b"\ndata: next\r\n\r\n") == [ServerSentEvent("message", "next", "")]
