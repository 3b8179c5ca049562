"""Stand-in providers for the arena web tests: scripted answers streamed at a set pace.

``ScriptedProvider`` implements the real ``Provider`` interface. Its answer is a fixed text
(or a function of the request), streamed word by word; it can fail before or during the
stream (raising the errors real providers raise, with messages that name the model, as
real upstream errors do), hang, and records every request it got.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from arena.errors import UpstreamError, UpstreamTimeout
from arena.protocol import ChatCompletionRequest
from arena.providers.base import Delta, Provider, ProviderInfo, TokenUsage
from arena.providers.registry import ModelSpec

Reply = str | Callable[[ChatCompletionRequest], str]


@dataclass
class ScriptedProvider(Provider):
    name: str
    reply: Reply = "A plain answer."
    interval_s: float = 0.0
    fail: str | None = None  # None | "before" | "during" | "timeout" | "hang"
    vision: bool = False
    kind: str = "openai_compatible"
    requests: list[ChatCompletionRequest] = field(default_factory=list)
    cancelled: int = 0
    healthy: bool = True  # what its health probe answers

    def __post_init__(self) -> None:
        caps = {"text", "vision"} if self.vision else {"text"}
        self.info = ProviderInfo(
            kind=self.kind, upstream_model=self.name, capabilities=frozenset(caps)
        )

    async def health(self) -> bool:
        return self.healthy

    def text_for(self, request: ChatCompletionRequest) -> str:
        return self.reply(request) if callable(self.reply) else self.reply

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        self.requests.append(request)
        if self.fail == "before":
            raise UpstreamError(f"upstream {self.name} refused: HTTP 500 from {self.name}")
        return self._stream(request)

    async def _stream(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        pieces = re.findall(r"\S+\s*|\s+", self.text_for(request)) or [""]
        try:
            for i, piece in enumerate(pieces):
                if self.interval_s:
                    await asyncio.sleep(self.interval_s)
                if self.fail == "during" and i == 2:
                    raise UpstreamError(f"stream from {self.name} broke mid-answer")
                if self.fail == "timeout" and i == 1:
                    raise UpstreamTimeout(f"{self.name} timed out")
                if self.fail == "hang" and i == 1:
                    await asyncio.sleep(3600)
                yield Delta(text=piece)
            yield Delta(finish_reason="stop")
            yield Delta(usage=TokenUsage(prompt_tokens=5, completion_tokens=len(pieces)))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def spec_for(
    name: str,
    *,
    vision: bool = False,
    organization: str = "",
    provider: str = "openai_compatible",
    **arena: object,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        provider=provider,  # type: ignore[arg-type]
        base_url="http://127.0.0.1:9/v1" if provider == "openai_compatible" else None,
        capabilities=["text", "vision"] if vision else ["text"],
        organization=organization,
        arena=arena or {},  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- an HTTP client that keeps
# every byte it received, to prove what a browser could have seen


@dataclass
class SSEEvent:
    event: str
    data: dict


def parse_sse(raw: bytes) -> list[SSEEvent]:
    import json

    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            events.append(SSEEvent(name, json.loads("\n".join(data))))
    return events


class ArenaClient:
    """A browser-like session against the arena API on a real server."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None) -> None:
        import httpx

        self.http = httpx.Client(base_url=base_url, timeout=30.0, headers=headers or {})
        self.received = bytearray()
        self.csrf: str | None = None

    def close(self) -> None:
        self.http.close()

    def _keep(self, response) -> None:  # type: ignore[no-untyped-def]
        self.received += f"HTTP {response.status_code}\n".encode()
        for key, value in response.headers.raw:
            self.received += key + b": " + value + b"\n"
        self.received += response.content + b"\n"

    def start(self, path: str = "/api/session"):  # type: ignore[no-untyped-def]
        response = self.get(path)
        self.csrf = self.http.cookies.get("arena_csrf")
        return response

    def get(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        response = self.http.get(path, **kwargs)
        self._keep(response)
        return response

    def post(self, path: str, *, csrf: bool = True, headers=None, **kwargs):  # type: ignore[no-untyped-def]
        all_headers = dict(headers or {})
        if csrf and self.csrf:
            all_headers.setdefault("X-CSRF-Token", self.csrf)
        response = self.http.post(path, headers=all_headers, **kwargs)
        self._keep(response)
        return response

    def new_battle(self, mode: str = "battle", models=None, vision: bool = False) -> str:  # type: ignore[no-untyped-def]
        body: dict = {"mode": mode, "vision": vision}
        if models is not None:
            body["models"] = models
        response = self.post("/api/battles", json=body)
        assert response.status_code == 201, response.text
        return response.json()["battle_id"]

    def send(self, battle_id: str, text: str, **kwargs):  # type: ignore[no-untyped-def]
        """POST a message; returns (response, parsed events) — events empty on 4xx."""
        response = self.post(f"/api/battles/{battle_id}/messages", json={"text": text, **kwargs})
        events = parse_sse(response.content) if response.status_code == 200 else []
        return response, events

    def regenerate(self, battle_id: str):  # type: ignore[no-untyped-def]
        response = self.post(f"/api/battles/{battle_id}/regenerate")
        events = parse_sse(response.content) if response.status_code == 200 else []
        return response, events

    def vote(self, battle_id: str, vote: str):  # type: ignore[no-untyped-def]
        return self.post(f"/api/battles/{battle_id}/vote", json={"vote": vote})
