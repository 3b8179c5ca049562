"""Resource exhaustion through ``/v1``, attacked as written, against a real gateway.

Embedding widths of 40,000,000 and 10**10, oversized batches, integers past 64 bits, JSON
nested 30,000 levels deep: each is a 400 naming what is wrong, before any memory is spent
on it. A backend that runs out of memory is a plain 500 that says so without the
allocator's words, and marks no backend failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from arena.protocol import EmbeddingRequest
from arena.providers.base import EmbeddingResult
from arena.providers.demo import DemoProvider

USER = [{"role": "user", "content": "Say hello"}]
JSON = {"content-type": "application/json"}


class OutOfMemoryDemo(DemoProvider):
    """A demo model whose embeddings fail the way numpy does when an array cannot fit."""

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        if request.user == "oom":
            raise MemoryError(
                "Unable to allocate 73.6 GiB for an array with shape (9876543210,) "
                "and data type float64"
            )
        return await super().embed(request)


@pytest.fixture
def demo_gateway(gateway_factory, make_settings, standin, make_providers) -> Iterator[str]:
    settings = make_settings(max_request_bytes=10 * 1024 * 1024)
    _, api_root = standin
    providers: dict[str, Any] = {
        "demo": OutOfMemoryDemo("demo", tokens_per_s=0),
        **make_providers(api_root, settings),
    }
    with gateway_factory(settings, providers) as (url, _app):
        yield url


def _refused(response: httpx.Response, param: str | None = None) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    assert "Unable to allocate" not in error["message"]
    return error["message"]


def test_embedding_dimensions_are_bounded(demo_gateway):
    for dimensions in (40_000_000, 10**10):
        response = httpx.post(
            demo_gateway + "/v1/embeddings",
            json={"model": "demo", "input": "hello world", "dimensions": dimensions},
            timeout=30,
        )
        message = _refused(response, "dimensions")
        assert "16384" in message
    # The whole answer is bounded too: many inputs of a wide vector.
    response = httpx.post(
        demo_gateway + "/v1/embeddings",
        json={"model": "demo", "input": ["a"] * 2048, "dimensions": 16_384},
        timeout=30,
    )
    assert "at most 8,388,608" in _refused(response)
    response = httpx.post(
        demo_gateway + "/v1/embeddings", json={"model": "demo", "input": ["a"] * 2049}, timeout=30
    )
    assert "at most 2048" in _refused(response, "input")
    # Within the bounds the widest vector is served.
    wide = httpx.post(
        demo_gateway + "/v1/embeddings",
        json={"model": "demo", "input": "hello world", "dimensions": 16_384},
        timeout=30,
    )
    assert wide.status_code == 200 and len(wide.json()["data"][0]["embedding"]) == 16_384


def test_out_of_memory_is_a_plain_500_and_marks_no_backend_failed(demo_gateway):
    body = {"model": "demo", "input": "hello", "user": "oom"}
    response = httpx.post(demo_gateway + "/v1/embeddings", json=body, timeout=30)
    assert response.status_code == 500
    error = response.json()["error"]
    assert "Unable to allocate" not in response.text and "GiB" not in response.text
    assert error["type"] == "server_error" and "out of memory" in error["message"]
    again = httpx.post(
        demo_gateway + "/v1/embeddings", json={"model": "demo", "input": "hello"}, timeout=30
    )
    assert again.status_code == 200


def test_numbers_that_grow_work_or_overflow_are_bounded(demo_gateway):
    chat = demo_gateway + "/v1/chat/completions"
    cases = [
        ({"max_tokens": 10**30}, "max_tokens"),
        ({"seed": 2**64}, "seed"),
        ({"stop": ["x"] * 17}, "stop"),
        ({"stop": "y" * 513}, "stop"),
    ]
    for extra, param in cases:
        response = httpx.post(
            chat, json={"model": "standin", "messages": USER, **extra}, timeout=30
        )
        _refused(response, param)
    completions = demo_gateway + "/v1/completions"
    for extra, param in [
        ({"prompt": ["p"] * 2049}, "prompt"),
        ({"prompt": ["p"] * 200, "n": 16}, None),  # 3,200 completions
        ({"prompt": "p", "best_of": 1000}, "best_of"),
    ]:
        response = httpx.post(completions, json={"model": "standin", **extra}, timeout=30)
        _refused(response, param)


def test_json_nested_30000_levels_is_400(demo_gateway):
    deep = b'{"model": "standin", "messages": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    for path in ("/v1/chat/completions", "/v1/embeddings", "/v1/completions"):
        response = httpx.post(demo_gateway + path, content=deep, headers=JSON, timeout=30)
        assert "JSON" in _refused(response)
    # Deep enough to break forwarding it upstream (orjson writes at most 255 levels), though
    # orjson reads it: refused before any backend sees it, and no backend is marked failed.
    nested = b"[" * 300 + b"]" * 300
    body = b'{"model": "standin", "messages": [{"role": "user", "content": "hi"}], "x": '
    response = httpx.post(
        demo_gateway + "/v1/chat/completions", content=body + nested + b"}", headers=JSON
    )
    assert "levels deep" in _refused(response)
    ok = httpx.post(
        demo_gateway + "/v1/chat/completions",
        json={"model": "standin", "messages": USER},
        timeout=30,
    )
    assert ok.status_code == 200
