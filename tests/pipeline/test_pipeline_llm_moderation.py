"""Moderation tags from the configured hook: the blocked-words list ``arena serve`` uses, and
an OpenAI-compatible moderation service (a loopback stand-in speaking its wire format)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from arena.battles.moderation import WordListModerator
from arena.config import Settings
from arena.pipeline.moderation_tagger import (
    moderation_tagger,
    moderation_taggers,
    word_list_tagger,
)
from arena.pipeline.tags import DeterministicTagger, LabellerTagger, PromptRecord
from arena.providers.moderation import OpenAIModerationClient
from support.servers import serve_app

CLEAN = PromptRecord("b1", ("How do I bake bread?", "And rolls?"))
FLAGGED = PromptRecord("b2", ("Tell me about otters.", "What is a SPOON   BENDER?", "  "))


def test_word_list_tags_every_turn_and_names_the_flagged_ones():
    tagger = word_list_tagger(WordListModerator(["spoon bender", "badword"]))
    assert isinstance(tagger, DeterministicTagger) and tagger.tag_names == ("moderation",)
    (clean,) = tagger.run(CLEAN)
    assert clean.status == "ok"
    assert clean.value == {"flagged": False, "categories": [], "flagged_turns": []}
    (flagged,) = tagger.run(FLAGGED)
    assert flagged.value == {
        "flagged": True,
        "categories": ["blocked_words"],
        "flagged_turns": [2],
    }


def test_a_changed_word_list_changes_the_tagger_version():
    one = word_list_tagger(WordListModerator(["alpha"]))
    same = word_list_tagger(WordListModerator(["ALPHA "]))
    other = word_list_tagger(WordListModerator(["alpha", "beta"]))
    assert one.version == same.version != other.version


def test_the_tagger_follows_the_settings_hook(tmp_path):
    assert moderation_taggers(Settings(blocked_words_path=None)) == ()
    words = tmp_path / "blocked.txt"
    words.write_text("# words we refuse\nspoon bender\n", encoding="utf-8")
    (tagger,) = moderation_taggers(Settings(blocked_words_path=words))
    assert tagger.run(FLAGGED)[0].value["flagged_turns"] == [2]


@dataclass
class ModerationService:
    """OpenAI's ``POST /v1/moderations``: flags inputs containing ``flag_word``."""

    flag_word: str = "otter"
    status: int = 200
    inputs: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def moderations(request: Request) -> JSONResponse:
            body = await request.json()
            self.inputs.append(body["input"])
            if self.status != 200:
                error = {"message": "overloaded", "type": "server_error", "code": None}
                return JSONResponse({"error": error}, status_code=self.status)
            hit = self.flag_word in body["input"].lower()
            result: dict[str, Any] = {
                "flagged": hit,
                "categories": {"harassment": hit, "violence": False},
                "category_scores": {"harassment": 0.9 if hit else 0.01, "violence": 0.0},
            }
            return JSONResponse({"id": "modr-1", "model": body.get("model"), "results": [result]})

        return Starlette(routes=[Route("/v1/moderations", moderations, methods=["POST"])])


@pytest.fixture
def service() -> Iterator[tuple[ModerationService, str]]:
    fake = ModerationService()
    with serve_app(fake.app()) as base_url:
        yield fake, f"{base_url}/v1"


async def test_a_moderation_service_tags_through_its_client(service):
    fake, base = service
    client = OpenAIModerationClient(base, timeout_s=10)
    try:
        tagger = moderation_tagger(client)
        assert isinstance(tagger, LabellerTagger)
        (flagged,) = await tagger.run(FLAGGED, None)
        (clean,) = await tagger.run(CLEAN, None)
        fake.status = 500
        (failed,) = await tagger.run(CLEAN, None)
    finally:
        await client.aclose()
    assert flagged.value == {"flagged": True, "categories": ["harassment"], "flagged_turns": [1]}
    assert clean.value == {"flagged": False, "categories": [], "flagged_turns": []}
    # A check that could not be made is an error (checked again next run), never "clean".
    assert failed.status == "error" and "HTTP 500" in failed.detail
    assert fake.inputs[:2] == ["Tell me about otters.", "What is a SPOON   BENDER?"]
    other_client = OpenAIModerationClient(base, model="another-model")
    try:
        assert moderation_tagger(other_client).version != tagger.version
    finally:
        await other_client.aclose()
