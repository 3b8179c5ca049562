"""Models served only by registered workers take part in the arena, through the router."""

from __future__ import annotations

import httpx

from arena.providers.registry import ModelSpec, RegistryFile
from support.processes import wait_until
from support.web_fakes import ArenaClient


def _register(gateway_url: str, upstream_root: str) -> None:
    response = httpx.post(
        gateway_url + "/internal/workers/register",
        json={
            "worker_id": "w-1",
            "model_names": ["pooled"],
            "url": upstream_root,
            "kind": "openai_compatible",
            "meta": {"upstream_models": {"pooled": "standin-model"}},
        },
    )
    assert response.status_code == 200, response.text


def _named_models(client: ArenaClient) -> set[str]:
    return {m["name"] for m in client.get("/api/models").json()["models"]}


def test_a_worker_model_joins_the_arena_when_its_worker_registers(
    standin, gateway_factory, make_settings
):
    config, api_root = standin
    config.reply = "Hello from a registered worker"
    registry = RegistryFile(
        models=[
            ModelSpec(name="demo-x", provider="demo", params={"tokens_per_s": 0}),
            ModelSpec(name="pooled", provider="workers"),
        ]
    )
    settings = make_settings(health_interval_s=0.2)
    with gateway_factory(settings, None, registry=registry) as (url, _):
        client = ArenaClient(url)
        client.start()
        # A probe round finds no worker yet, so "pooled" is in outage.
        wait_until(lambda: "pooled" not in _named_models(client), what="a probe round")

        _register(url, api_root)
        wait_until(lambda: "pooled" in _named_models(client), what="the worker's model to join")

        battle_id = client.new_battle("side_by_side", models=["demo-x", "pooled"])
        response, events = client.send(battle_id, "hello")
        assert response.status_code == 200
        done = {e.data["side"]: e.data["html"] for e in events if e.event == "done"}
        sides = client.get(f"/api/battles/{battle_id}").json()["sides"]
        pooled_side = next(s["side"] for s in sides if s["model"] == "pooled")
        assert "Hello from a registered worker" in done[pooled_side]
        assert client.vote(battle_id, "a").status_code == 200
        client.close()
