"""Stop-string matching across pieces, and image data URLs."""

from __future__ import annotations

import pytest

from arena.errors import BadRequest
from arena.providers.data_urls import parse_data_url
from arena.providers.stop_strings import StopMatcher
from arena.providers.upstream_http import base_url_with_version, is_context_length_message


def run(pieces, stops):
    matcher = StopMatcher(stops)
    out = "".join(matcher.feed(p) for p in pieces)
    return out + matcher.flush(), matcher.stopped


def test_stop_string_split_across_pieces_is_caught_and_not_emitted():
    assert run(["Hello wo", "rld and ", "more"], ["world"]) == ("Hello ", True)
    assert run(["a", "b", "c", "END", "tail"], ["END"]) == ("abc", True)


def test_partial_match_that_does_not_complete_is_released():
    assert run(["Hello wor", "m and more"], ["world"]) == ("Hello worm and more", False)
    assert run(["ends with wor"], ["world"]) == ("ends with wor", False)


def test_earliest_of_several_stops_wins_and_no_stops_passes_through():
    assert run(["x STOP y END z"], ["END", "STOP"]) == ("x ", True)
    assert run(["anything"], []) == ("anything", False)


def test_data_urls():
    assert parse_data_url("data:image/png;base64,aGVsbG8=") == ("image/png", "aGVsbG8=")
    assert parse_data_url("data:image/jpg;base64,aGVsbG8=")[0] == "image/jpeg"
    with pytest.raises(BadRequest, match="not supported"):
        parse_data_url("data:application/pdf;base64,aGVsbG8=")
    with pytest.raises(BadRequest, match="valid base64"):
        parse_data_url("data:image/png;base64,@@@")
    with pytest.raises(BadRequest, match="must look like"):
        parse_data_url("data:image/png,rawbytes")


def test_context_length_messages_of_common_engines():
    for message in (
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
        "prompt is too long: 215000 tokens > 200000 maximum",
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 5000",
    ):
        assert is_context_length_message(message)
    assert not is_context_length_message("Invalid value for 'temperature'.")


def test_base_url_versions():
    assert (
        base_url_with_version("https://api.anthropic.com", "v1") == "https://api.anthropic.com/v1"
    )
    assert base_url_with_version("https://x.org/v1/", "v1") == "https://x.org/v1"
    assert base_url_with_version("https://g.com/v1beta", "v1beta") == "https://g.com/v1beta"
