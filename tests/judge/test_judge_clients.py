"""The judge commands' providers share one HTTP client and close it once (arena.judge.clients).

The judge is the scripted OpenAI-format stand-in on loopback; calls go through the real
``openai_compatible`` provider on the gateway's shared client.
"""

from __future__ import annotations

import asyncio

from arena.config import Settings
from arena.judge.calls import chat_once
from arena.judge.clients import build_provider_set
from arena.providers.registry import parse_registry
from arena.providers.upstream_http import UpstreamClient


def _specs(base_url: str) -> dict:
    doc = {
        "models": [
            {
                "name": f"judge-{i}",
                "provider": "openai_compatible",
                "base_url": base_url + "/v1",
                "upstream_model": f"judge-{i}",
            }
            for i in (1, 2)
        ]
        + [{"name": "demo-a", "provider": "demo"}]
    }
    return {s.name: s for s in parse_registry(doc).models}


def test_one_shared_client_for_every_http_model_closed_once(judge_standin):
    judge_standin.script = lambda body: f"{body['model']} says Rating: [[6]]"
    specs = _specs(judge_standin.base_url)
    providers = build_provider_set(specs, ["judge-1", "judge-2", "demo-a"], Settings())
    assert len(providers.clients) == 1
    shared = providers.clients[0]
    assert isinstance(shared, UpstreamClient) and shared.shared
    assert providers["judge-1"]._client is shared
    assert providers["judge-2"]._client is shared
    assert providers["demo-a"].info.kind == "demo"

    async def main():
        try:
            return await asyncio.gather(
                *(
                    chat_once(providers[name], name, [{"role": "user", "content": "hi"}], {},
                              timeout_s=10)
                    for name in ["judge-1", "judge-2"] * 4
                )
            )  # fmt: skip
        finally:
            await providers.aclose()

    results = asyncio.run(main())
    assert [r.text for r in results[:2]] == [
        "judge-1 says Rating: [[6]]",
        "judge-2 says Rating: [[6]]",
    ]
    assert len(judge_standin.requests) == 8
    assert shared.is_closed


def test_clients_option_spreads_a_judge_over_several_shared_clients(judge_standin):
    specs = _specs(judge_standin.base_url)
    providers = build_provider_set(specs, ["judge-1", "demo-a"], Settings(), clients=3)
    instances = providers["judge-1"]
    assert len(instances) == 3 and len(providers.clients) == 3
    assert {id(p._client) for p in instances} == {id(c) for c in providers.clients}
    assert providers["demo-a"].info.kind == "demo"

    async def main():
        try:
            for p in instances:
                result = await chat_once(
                    p, "judge-1", [{"role": "user", "content": "x"}], {}, timeout_s=10
                )
                assert result.text == "Rating: [[5]]"
        finally:
            await providers.aclose()

    asyncio.run(main())
    assert all(c.is_closed for c in providers.clients)


def test_no_client_when_no_http_model():
    specs = {s.name: s for s in parse_registry({"models": [{"name": "d", "provider": "demo"}]})
             .models}  # fmt: skip
    providers = build_provider_set(specs, ["d"], Settings())
    assert providers.clients == []
    asyncio.run(providers.aclose())
