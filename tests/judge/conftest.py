"""Fixtures for the judge tests: an in-process fake Provider and a scripted judge stand-in.

``FakeProvider`` implements the real ``Provider`` interface with a script (a function of
the chat messages) so grading logic can be tested without HTTP. ``judge_standin`` is a real
HTTP server on loopback speaking the OpenAI chat-completions wire format (JSON or SSE with
a usage chunk, OpenAI error bodies and status codes); its answer to each request comes from
a script too, so a test decides per prompt whether the judge answers a verdict, garbage, an
HTTP 500, or nothing for a while (a timeout).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from arena.errors import UpstreamError, UpstreamTimeout
from arena.protocol import ChatCompletionRequest
from arena.providers.base import Delta, Provider, ProviderInfo, TokenUsage
from support.servers import serve_app


@dataclass(frozen=True)
class Reply:
    """What the scripted judge does for one request."""

    text: str = ""
    status: int = 200
    delay_s: float = 0.0


Script = Callable[[list[dict[str, Any]]], Reply | str]


class FakeProvider(Provider):
    """A Provider whose answers come from ``script(messages)``; records every request.

    A reply with status 500 raises ``UpstreamError``, one with status 504 raises
    ``UpstreamTimeout``, as the real adapters do.
    """

    def __init__(self, script: Script, *, name: str = "fake") -> None:
        self.script = script
        self.requests: list[ChatCompletionRequest] = []
        self.info = ProviderInfo(kind="fake", upstream_model=name)

    async def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        self.requests.append(request)
        messages = [m.model_dump(exclude_none=True) for m in request.messages]
        reply = self.script(messages)
        if isinstance(reply, str):
            reply = Reply(reply)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status == 504:
            raise UpstreamTimeout("fake upstream timed out")
        if reply.status != 200:
            raise UpstreamError(f"fake upstream answered {reply.status}")
        words = reply.text.split(" ")
        for i, word in enumerate(words):
            yield Delta(text=word + (" " if i < len(words) - 1 else ""))
        yield Delta(finish_reason="stop")
        yield Delta(
            usage=TokenUsage(prompt_tokens=len(str(messages)) // 4, completion_tokens=len(words))
        )


@pytest.fixture
def fake_provider() -> Callable[..., FakeProvider]:
    return FakeProvider


@pytest.fixture
def reply() -> type[Reply]:
    """The ``Reply`` class, for scripts that answer with a status or a delay."""
    return Reply


@dataclass
class StandinJudge:
    """A scripted OpenAI-format judge; ``script(body)`` gets the whole request body (model,
    messages, parameters) and may be replaced by a test at any time."""

    script: Callable[[dict[str, Any]], Reply | str] = field(
        default=lambda body: Reply("Rating: [[5]]")
    )
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    def app(self) -> Starlette:
        async def chat(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            reply = self.script(body)
            if isinstance(reply, str):
                reply = Reply(reply)
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            if reply.status != 200:
                error = {
                    "error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                }
                return JSONResponse(error, status_code=reply.status)
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
            completion_tokens = len(reply.text.split())
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
            base = {"id": cid, "created": int(time.time()), "model": body["model"]}
            if not body.get("stream"):
                message = {"role": "assistant", "content": reply.text}
                return JSONResponse(
                    {
                        **base,
                        "object": "chat.completion",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": usage,
                    }
                )
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

            async def events() -> AsyncIterator[bytes]:
                def sse(choices: list[dict[str, Any]], usage_: Any = None) -> bytes:
                    obj = {**base, "object": "chat.completion.chunk", "choices": choices}
                    if include_usage:
                        obj["usage"] = usage_
                    return b"data: " + json.dumps(obj).encode() + b"\n\n"

                yield sse([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
                words = reply.text.split(" ")
                for i, word in enumerate(words):
                    piece = word + (" " if i < len(words) - 1 else "")
                    yield sse([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
                yield sse([{"index": 0, "delta": {}, "finish_reason": "stop"}])
                if include_usage:
                    yield sse([], usage)
                yield b"data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


@pytest.fixture
def judge_standin() -> Iterator[StandinJudge]:
    judge = StandinJudge()
    with serve_app(judge.app()) as base_url:
        judge.base_url = base_url
        yield judge


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory):
    """A tiny random-weight Llama on disk (support.tiny_model), built once per session."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from support.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("judge-tiny-model"))


@pytest.fixture
def graded_prompt() -> dict[str, str]:
    """A judge prompt of our own in Arena-Hard's shape (five verdict levels, A/B answers
    filled as ``answer_1``/``answer_2``), for tests of user-supplied prompt files."""
    return {
        "name": "arena-hard-test",
        "type": "pairwise",
        "system_prompt": "Compare A and B. End with one of [[A>>B]], [[A>B]], [[A=B]], [[B>A]], "
        "[[B>>A]].",
        "prompt_template": "<|User Prompt|>\n{question_1}\n\n"
        "<|The Start of Assistant A's Answer|>\n{answer_1}\n<|The End of Assistant A's Answer|>"
        "\n\n<|The Start of Assistant B's Answer|>\n{answer_2}\n"
        "<|The End of Assistant B's Answer|>",
        "output_format": "[[A>>B]]",
    }


@pytest.fixture
def default_registry_here(tmp_path, monkeypatch):
    """Run the CLI in ``tmp_path`` with no registry file, so the judge commands use the
    default registry as ``arena serve`` does; no Hub models, so it holds the demo models."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARENA_CONFIG_PATH", raising=False)
    monkeypatch.setenv("ARENA_DEFAULT_HUB_MODELS", "")
    return tmp_path
