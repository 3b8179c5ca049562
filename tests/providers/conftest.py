"""Fixtures for provider tests: stand-in upstreams on loopback and a tiny local model."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from arena.providers.upstream_http import Timeouts
from support import anthropic_standin, gemini_standin, openai_standin
from support.servers import StandinConfig, serve_app

# Short limits so that no test waits long on a stuck upstream (whose faults last a minute,
# see StandinConfig: a test sees these limits end a request, never the fault running out).
FAST = Timeouts(connect=2.0, first_token=1.0, idle=0.5, total=5.0)
# How long a test waits for what a limit should have done long before (a loaded machine can
# be slow; the stand-in's minute-long fault is what such a bound must stay under).
CUT_OFF_S = 20.0


@dataclass
class Upstream:
    url: str
    config: StandinConfig


def _serve(module) -> Iterator[Upstream]:
    config = StandinConfig()
    with serve_app(module.create_app(config)) as url:
        yield Upstream(url, config)


@pytest.fixture
def openai_upstream() -> Iterator[Upstream]:
    yield from _serve(openai_standin)


@pytest.fixture
def anthropic_upstream() -> Iterator[Upstream]:
    yield from _serve(anthropic_standin)


@pytest.fixture
def gemini_upstream() -> Iterator[Upstream]:
    yield from _serve(gemini_standin)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from support.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
