"""Models in outage get no battles: health probes in the background, and failed answers of
named chats at once (never an anonymous battle's failure)."""

from __future__ import annotations

import asyncio
import time

from arena.web.model_health import ModelHealth
from support.processes import wait_until
from support.web_fakes import ScriptedProvider

UNLIMITED = {
    "requests_per_session": "1000/minute",
    "requests_per_ip": "1000/minute",
    "votes_per_session": "1000/minute",
    "votes_per_ip": "1000/minute",
}


class SlowProbe(ScriptedProvider):
    async def health(self) -> bool:
        await asyncio.sleep(10)
        return True


class BrokenProbe(ScriptedProvider):
    async def health(self) -> bool:
        raise RuntimeError("probe blew up")


class NotLoaded(ScriptedProvider):
    is_loaded = False


async def test_probes_decide_who_is_down_and_a_timeout_or_error_counts_as_down():
    ok, sick = ScriptedProvider("ok"), ScriptedProvider("sick", healthy=False)
    slow, broken = SlowProbe("slow"), BrokenProbe("broken")
    health = ModelHealth(
        {p.name: p for p in (ok, sick, slow, broken)}, interval_s=60, timeout_s=0.2
    )
    started = time.monotonic()
    await health.probe_all()
    assert time.monotonic() - started < 8  # the slow probe (10 s) was cut off, not awaited
    assert health.down == {"sick", "slow", "broken"}
    sick.healthy = True
    await health.probe_all()
    assert health.down == {"slow", "broken"}


async def test_a_failed_answer_means_outage_until_the_next_probe_but_a_refusal_does_not():
    a = ScriptedProvider("a")
    health = ModelHealth({"a": a}, interval_s=60, timeout_s=1)
    health.report_failure("a", "rejected")  # that request's fault, not the model's
    health.report_failure("a", "context_length")
    assert health.down == set()
    health.report_failure("a", "timeout")
    assert health.down == {"a"}
    await health.probe_all()
    assert health.down == set()


async def test_a_model_still_loading_starts_in_outage():
    health = ModelHealth({"x": NotLoaded("x"), "y": ScriptedProvider("y")})
    assert health.down == {"x"}


def test_battles_never_draw_a_model_in_outage_and_draw_it_again_once_back(arena_server):
    providers = [ScriptedProvider(n) for n in ("alpha", "beta", "gamma")]
    providers[2].healthy = False
    arena = arena_server(providers, settings={**UNLIMITED, "health_interval_s": 0.2})
    client = arena.client()
    wait_until(
        lambda: "gamma" not in {m["name"] for m in client.get("/api/models").json()["models"]},
        what="the first probe round to put gamma in outage",
    )
    seen: set[str] = set()
    for _ in range(12):
        battle_id = client.new_battle()
        client.send(battle_id, "hello")
        models = client.vote(battle_id, "tie").json()["models"]
        seen |= {models["a"]["name"], models["b"]["name"]}
    assert seen == {"alpha", "beta"}

    providers[2].healthy = True
    deadline = time.monotonic() + 10
    while "gamma" not in seen and time.monotonic() < deadline:
        battle_id = client.new_battle()
        client.send(battle_id, "hello")
        models = client.vote(battle_id, "tie").json()["models"]
        seen |= {models["a"]["name"], models["b"]["name"]}
    assert "gamma" in seen
    client.close()


def test_a_failed_answer_moves_availability_only_in_a_named_chat(arena_server):
    """An anonymous battle's failure is never reported (it would name the failed model in
    /api/models before the vote); a named chat's failure puts its model in outage at once."""
    providers = [ScriptedProvider(n) for n in ("alpha", "beta", "gamma")]
    providers[2].fail = "before"  # its health probe still says fine
    arena = arena_server(providers, settings={**UNLIMITED, "health_interval_s": 3600})
    client = arena.client()
    listed = client.get("/api/models").json()
    failures = 0
    for _ in range(40):  # until gamma has been drawn (and failed) a few times
        battle_id = client.new_battle()
        _, events = client.send(battle_id, "hello")
        if any(e.event == "error" for e in events):
            failures += 1
            assert client.get("/api/models").json() == listed
            if failures == 3:
                break
    assert failures == 3
    assert arena.app.state.web.service.health.down == set()

    named = client.new_battle("side_by_side", ["gamma", "alpha"])
    _, events = client.send(named, "hello")
    assert [e.data["kind"] for e in events if e.event == "error"] == ["upstream"]
    names = [m["name"] for m in client.get("/api/models").json()["models"]]
    assert names == ["alpha", "beta"]
    for _ in range(10):
        battle_id = client.new_battle()
        _, events = client.send(battle_id, "hello")
        assert not any(e.event == "error" for e in events)  # gamma is out
    client.close()
