"""Property: before the vote, every byte a client can get is the same whichever pair of
models was drawn (the byte-scan test of test_web_api_privacy, widened from "no name in the
bytes" to "nothing in the bytes, statuses or lists depends on the pair").

Hypothesis draws a scenario: a text or a vision battle, whether the first message carries
an image, which sides fail, whether side A's answer names a registry model, whether the
failing sides recover on regenerate. The same scenario is then played, against one real app
on loopback, with two or three different drawn pairs forced into the battle (a test seam in
front of the real sampler, which must allow the pair). The models differ in everything a
pair could give away: vision or not, demo or real, how they fail (an upstream error naming
its host, a timeout, a context window, a crash, no worker serving it), the finish reason
their upstream reports. What a side says and whether it fails is set per side by the scenario, so
any difference left in what the client saw came from the server.

Compared, as bytes: status line, headers (less Date and Server-Timing; cookie values and
expiry masked) and body of ``GET /api/models``, the side-by-side picker page, battle
creation, the battle view, every message and regenerate SSE stream, the vote's refusal; the
battle id and session tokens (random by design) are masked with same-length placeholders.
"""

from __future__ import annotations

import difflib
import io
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from arena.battles.pair_sampler import SampledPair
from arena.errors import ContextLengthExceeded, NoHealthyWorker, UpstreamError, UpstreamTimeout
from arena.protocol import ChatCompletionRequest
from arena.providers.base import Delta
from support.web_fakes import ArenaClient, ScriptedProvider, spec_for


@dataclass
class StyledModel(ScriptedProvider):
    """A stand-in that, when told to fail, fails in its own way, and ends answers with its
    own upstream's finish reason."""

    failure: Callable[[], BaseException] = RuntimeError
    finish: str | None = "stop"
    failing: bool = False

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        self.requests.append(request)
        if self.failing:
            raise self.failure()
        return self._answer(request)

    async def _answer(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        for piece in re.findall(r"\S+\s*", self.text_for(request)):
            yield Delta(text=piece)
        if self.finish is not None:
            yield Delta(finish_reason=self.finish)


def _models() -> list[StyledModel]:
    def upstream() -> BaseException:
        return UpstreamError("HTTP 502 from api.orchidic.example: orchid-vision-7b overloaded")

    def crash() -> BaseException:
        return RuntimeError("basalt-vision-demo: demo engine crashed")

    def timeout() -> BaseException:
        return UpstreamTimeout("ember-vision-34b at ember.example did not answer in 120 s")

    def context() -> BaseException:
        return ContextLengthExceeded("cinder-text-13b: 4096-token context window exceeded")

    def unserved() -> BaseException:
        return NoHealthyWorker("no worker serves dune-text-3b (last seen at 10.0.0.7:8000)")

    return [
        StyledModel("orchid-vision-7b", vision=True, failure=upstream, finish="stop"),
        StyledModel("basalt-vision-demo", vision=True, kind="demo", failure=crash, finish=None),
        StyledModel("ember-vision-34b", vision=True, failure=timeout, finish="end_turn"),
        StyledModel("cinder-text-13b", failure=context, finish="eos"),
        StyledModel("dune-text-3b", failure=unserved, finish="length"),
    ]


def _specs(models: list[StyledModel]) -> list[Any]:
    orgs = {
        "orchid-vision-7b": "Orchidic",
        "ember-vision-34b": "Emberline",
        "cinder-text-13b": "Cindery",
    }
    return [
        spec_for(
            m.name,
            vision=m.vision,
            organization=orgs.get(m.name, ""),
            provider="demo" if m.kind == "demo" else "openai_compatible",
        )
        for m in models
    ]


class ForcedPairs:
    """Stands in for the service's pair sampler: hands out the pair the test chose, after
    checking that the real sampler could have drawn it now."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.next: tuple[str, str] | None = None

    def distribution(self, **kwargs: Any) -> Any:
        return self.real.distribution(**kwargs)

    def sample(self, rng: Any, **kwargs: Any) -> SampledPair:
        assert self.next is not None
        p = self.real.distribution(**kwargs).probability(*self.next)
        assert p > 0, f"the sampler could not draw {self.next} ({kwargs})"
        return SampledPair(self.next[0], self.next[1], p)


@dataclass(frozen=True)
class Scenario:
    vision: bool
    image_first: bool
    fail: tuple[bool, bool]  # side a, side b
    mention: bool  # side a's answer names a registry model
    recover: bool  # failing sides answer on the regenerate
    pairs: tuple[tuple[str, str], ...]


VISION = ("orchid-vision-7b", "basalt-vision-demo", "ember-vision-34b")
ALL = (*VISION, "cinder-text-13b", "dune-text-3b")


def _ordered_pairs(names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(a, b) for a in names for b in names if a != b]


@st.composite
def scenarios(draw: Any) -> Scenario:
    vision = draw(st.booleans())
    pool = _ordered_pairs(VISION if vision else ALL)
    pairs = draw(st.lists(st.sampled_from(pool), min_size=2, max_size=3, unique=True))
    return Scenario(
        vision=vision,
        image_first=draw(st.booleans()),
        fail=(draw(st.booleans()), draw(st.booleans())),
        mention=draw(st.booleans()),
        recover=draw(st.booleans()),
        pairs=tuple(pairs),
    )


# ------------------------------------------------------------------ what a client saw


def _cookie(value: str) -> str:
    """A Set-Cookie header less its random value and its clock-derived lifetime."""
    value = re.sub(r"^([^=]+)=[^;]*", r"\1=<value>", value)
    value = re.sub(r"(?i)max-age=\d+", "Max-Age=<seconds>", value)
    return re.sub(r"(?i)expires=[^;]*", "expires=<time>", value)


def _seen(response: httpx.Response, masks: list[bytes]) -> bytes:
    lines = [f"HTTP {response.status_code}".encode()]
    for key, value in response.headers.multi_items():
        if key.lower() in ("date", "server-timing"):
            continue
        if key.lower() == "set-cookie":
            value = _cookie(value)
        lines.append(f"{key}: {value}".encode())
    body = response.content
    for secret in masks:
        body = body.replace(secret, b"#" * len(secret))
    return b"\n".join([*lines, body])


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 12), (40, 160, 80)).save(buf, "PNG")
    return buf.getvalue()


TEXT = {
    "a": "Side one says **this**, then `that`.",
    "b": "Side two answers:\n\n- a list item\n- another one",
}
MENTION = " By the way, dune-text-3b would say the same."


def _play(
    arena: Any, forced: ForcedPairs, scenario: Scenario, pair: tuple[str, str], image_id: str
) -> list[tuple[str, bytes]]:
    """One battle of ``pair`` under ``scenario``: every response before the vote."""
    models: dict[str, StyledModel] = arena.providers
    client = ArenaClient(arena.url)
    client.start()
    masks = [v.encode() for v in client.http.cookies.values()]
    seen: list[tuple[str, bytes]] = []

    def keep(step: str, response: httpx.Response) -> httpx.Response:
        seen.append((step, _seen(response, masks)))
        return response

    side_model = dict(zip("ab", pair, strict=True))
    try:
        keep("models", client.get("/api/models"))
        keep("picker", client.get("/side-by-side"))
        forced.next = pair
        created = client.post("/api/battles", json={"mode": "battle", "vision": scenario.vision})
        battle_id = created.json()["battle_id"]
        masks.append(battle_id.encode())
        keep("create", created)
        keep("view", client.get(f"/api/battles/{battle_id}"))

        for side, failing in zip("ab", scenario.fail, strict=True):
            model = models[side_model[side]]
            model.reply = TEXT[side] + (MENTION if side == "a" and scenario.mention else "")
            model.failing = failing
        body: dict[str, Any] = {"text": "Look at this, please."}
        if scenario.image_first:
            body["image_id"] = image_id
        path = f"/api/battles/{battle_id}"
        keep("first message", client.post(f"{path}/messages", json=body))
        keep("models after", client.get("/api/models"))
        keep("picker after", client.get("/side-by-side"))
        keep("view after", client.get(path))
        keep("second message", client.post(f"{path}/messages", json={"text": "And more?"}))
        if scenario.recover:
            for model in models.values():
                model.failing = False
        keep("regenerate", client.post(f"{path}/regenerate"))
        keep("view before vote", client.get(path))
        keep("models before vote", client.get("/api/models"))
        vote = client.post(f"{path}/vote", json={"vote": "a"})
        if vote.status_code == 200:  # the names are out now: compare only what the vote says
            result = vote.json()
            seen.append(("vote", f"200 {result['counted']} {result['leaked']}".encode()))
        else:
            keep("vote", vote)
    finally:
        for model in models.values():
            model.failing = False
        client.close()
    return seen


def _first_difference(a: list[tuple[str, bytes]], b: list[tuple[str, bytes]]) -> str:
    for (step_a, seen_a), (step_b, seen_b) in zip(a, b, strict=False):
        if (step_a, seen_a) != (step_b, seen_b):
            first = seen_a.decode(errors="replace").splitlines()
            second = seen_b.decode(errors="replace").splitlines()
            diff = difflib.unified_diff(first, second, lineterm="", n=1)
            return f"{step_a} / {step_b}:\n" + "\n".join(diff)
    return f"{len(a)} steps against {len(b)}"


def test_nothing_a_client_sees_before_the_vote_depends_on_the_drawn_pair(arena_server):
    models = _models()
    arena = arena_server(
        models,
        specs=_specs(models),
        settings={
            "requests_per_session": "1000000/minute",
            "requests_per_ip": "1000000/minute",
            "votes_per_session": "1000000/minute",
            "votes_per_ip": "1000000/minute",
            "health_interval_s": 3600,
        },
    )
    service = arena.app.state.web.service
    forced = ForcedPairs(service.sampler)
    service.sampler = forced
    uploader = arena.client()
    upload = uploader.post("/api/images", files={"image": ("p.png", _png(), "image/png")})
    assert upload.status_code == 201
    image_id = upload.json()["image_id"]
    uploader.close()
    with httpx.Client() as http:
        listed = http.get(arena.url + "/api/models").content

    @settings(
        max_examples=16,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(scenario=scenarios())
    def same_bytes_for_every_pair(scenario: Scenario) -> None:
        played = [_play(arena, forced, scenario, pair, image_id) for pair in scenario.pairs]
        for pair, seen in zip(scenario.pairs[1:], played[1:], strict=True):
            assert seen == played[0], (
                f"{scenario.pairs[0]} and {pair} told apart:\n" + _first_difference(played[0], seen)
            )
        assert service.health.down == set()

    same_bytes_for_every_pair()
    with httpx.Client() as http:
        assert http.get(arena.url + "/api/models").content == listed
