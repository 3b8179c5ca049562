"""Stop-string matching across pieces, image data URLs, and sanitizing upstream text."""

from __future__ import annotations

import pytest

from arena.errors import BadRequest
from arena.providers.data_urls import parse_data_url
from arena.providers.stop_strings import StopMatcher
from arena.providers.upstream_errors import (
    MAX_MESSAGE_CHARS,
    is_context_length_message,
    sanitize_upstream_text,
)
from arena.providers.upstream_http import base_url_with_version


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


@pytest.mark.parametrize(
    "words",
    [
        "Invalid value for 'temperature'.",
        "max_tokens: must be <= 4096",
        "This model's maximum context length is 128 tokens. However, your messages resulted "
        "in 4000 tokens.",
        "model Meta-Llama-3-8B-Instruct (Qwen2.5-0.5B-Instruct, gpt-3.5-turbo) is loading",
    ],
)
def test_sanitizing_keeps_the_words_a_client_needs(words):
    assert sanitize_upstream_text(words) == words


def test_sanitizing_removes_addresses_hosts_and_credentials():
    raw = (
        "failed at https://gpu-1.internal:8000/v1?key=abc on 10.0.0.5:8000 and [fd00::5]:80\n"
        "host db.corp.example.com; Authorization: Bearer tok_live_xyz api_key=plain-secret "
        "sk-ant-0123456789abcdef AIzaSyA0123456789abcdefghijkl digest "
        "d41d8cd98f00b204e9800998ecf8427e our-own-key <b>bold</b>"
    )
    clean = sanitize_upstream_text(raw, known=["our-own-key"])
    for leak in ("https", "gpu-1", "10.0.0.5", "fd00", "corp.example", "tok_live", "plain-secret",
                 "sk-ant", "AIza", "d41d8cd9", "our-own-key", "<b>", "\n"):  # fmt: skip
        assert leak not in clean, (leak, clean)
    assert clean.startswith("failed at [url]") and "Authorization: [redacted]" in clean


def test_sanitizing_cuts_long_text_to_one_short_line():
    clean = sanitize_upstream_text("word " * 1000)
    assert len(clean) <= MAX_MESSAGE_CHARS and clean.endswith("…")
    assert sanitize_upstream_text(" \n\t ") == "no error message"
