"""Routers served as gateway models: the registry entry, the choice among registry targets
only, and the official ``openai`` SDK against a real gateway on loopback whose targets are
stand-in upstreams (plain and streamed answers, usage, upstream errors, a client leaving
mid-stream, metrics per routed target)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from arena.config import Settings
from arena.providers.registry import RegistryError, build_providers, parse_registry
from arena.providers.router import parse_router_name
from arena.routing.persistence import save_router
from arena.routing.training import train_router
from support.openai_standin import create_app as create_standin
from support.processes import wait_until
from support.servers import StandinConfig, serve_app

from .conftest import STRONG, WEAK, make_prompts, pair_battles

MATH = "prove the integral theorem about this matrix eigenvalue equation please"
CHAT = "hello tell me about a movie for the weekend vacation birthday"


def settings_for(tmp_path: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'arena.db'}",
        request_timeout_s=30.0,
        connect_timeout_s=5.0,
        first_token_timeout_s=5.0,
        stream_idle_timeout_s=5.0,
    )


@pytest.fixture
def upstreams() -> Iterator[dict[str, tuple[StandinConfig, str]]]:
    """Two stand-in upstreams with answers that say which one spoke."""
    with contextlib.ExitStack() as stack:
        out = {}
        for name in ("strong", "weak"):
            config = StandinConfig(reply=f"The {name} upstream answers")
            out[name] = (config, stack.enter_context(serve_app(create_standin(config))) + "/v1")
        yield out


def registry_doc(upstreams: dict[str, tuple[StandinConfig, str]], *routers: dict) -> dict:
    return {
        "models": [
            {"name": "big", "provider": "openai_compatible", "base_url": upstreams["strong"][1]},
            {"name": "small", "provider": "openai_compatible", "base_url": upstreams["weak"][1]},
            {
                "name": "broken",
                "provider": "openai_compatible",
                "base_url": upstreams["weak"][1],
                "upstream_model": "fault-500",
            },
            {
                "name": "midway",
                "provider": "openai_compatible",
                "base_url": upstreams["weak"][1],
                "upstream_model": "fault-error_event",
            },
            *routers,
        ]
    }


@contextlib.contextmanager
def gateway(tmp_path: Any, doc: dict) -> Iterator[str]:
    from arena.server import create_server_app

    app = create_server_app(settings_for(tmp_path), registry=parse_registry(doc))
    with serve_app(app) as url:
        yield url


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)


def trained_mf(tmp_path: Any) -> None:
    """An ``mf`` router trained on synthetic battles (math → strong), saved where the
    registry name ``mf`` finds it: ``<data_dir>/routers/mf``."""
    data = pair_battles(300, seed=3)
    router = train_router("mf", data, strong=STRONG, weak=WEAK)
    save_router(router, tmp_path / "data" / "routers" / "mf", training_prompts=data.prompts)


# ---------------------------------------------------------------- the registry entry


def test_name_rule_and_explicit_fields():
    assert parse_router_name("router-mf-0.116") == ("mf", 0.116)
    assert parse_router_name("router-runs/sw-2-0.5") == ("runs/sw-2", 0.5)
    assert parse_router_name("llama-3-8b") is None
    doc = {
        "models": [
            {"name": "big", "provider": "demo"},
            {"name": "small", "provider": "demo"},
            {"name": "router-random-0.3", "provider": "router", "strong": "big", "weak": "small"},
            {
                "name": "cheap-first",
                "provider": "router",
                "router": "random",
                "threshold": 0.7,
                "models": [{"name": "big", "cost": 10}, {"name": "small", "cost": 1}],
            },
        ]
    }
    specs = {s.name: s for s in parse_registry(doc).models}
    assert (specs["router-random-0.3"].router, specs["router-random-0.3"].threshold) == (
        "random",
        0.3,
    )
    assert [t.cost for t in specs["cheap-first"].models] == [10, 1]


@pytest.mark.parametrize(
    ("router", "message"),
    [
        ({"name": "r", "provider": "router", "strong": "big", "weak": "small"}, "needs router"),
        ({"name": "router-random-0.5", "provider": "router", "strong": "big"}, "strong and weak"),
        (
            {"name": "router-random-1.5", "provider": "router", "strong": "big", "weak": "small"},
            "between 0 and 1",
        ),
        (
            {"name": "router-random-0.5", "provider": "router", "strong": "big", "weak": "nope"},
            "'nope' is not a model of this registry",
        ),
        (
            {"name": "router-random-0.5", "provider": "router", "strong": "big", "weak": "w"},
            "served by 'workers'",
        ),
        ({"name": "x", "provider": "demo", "threshold": 0.5}, "only apply to provider 'router'"),
        (
            {
                "name": "router-random-0.5",
                "provider": "router",
                "models": [{"name": "big", "cost": -1}, {"name": "small", "cost": 1}],
            },
            "greater than or equal to 0",
        ),
    ],
)
def test_bad_router_entries_are_refused_with_their_reason(router, message):
    doc = {
        "models": [
            {"name": "big", "provider": "demo"},
            {"name": "small", "provider": "demo"},
            {"name": "w", "provider": "workers"},
            router,
        ]
    }
    with pytest.raises(RegistryError, match=message):
        parse_registry(doc)


def test_an_untrained_router_name_is_a_clear_error(tmp_path):
    doc = {
        "models": [
            {"name": "big", "provider": "demo"},
            {"name": "small", "provider": "demo"},
            {"name": "router-mf-0.75", "provider": "router", "strong": "big", "weak": "small"},
        ]
    }
    with pytest.raises(RegistryError, match="router 'mf': no trained router"):
        build_providers(parse_registry(doc), settings_for(tmp_path))


def test_second_pass_shares_the_targets_providers(tmp_path):
    doc = {
        "models": [
            {"name": "big", "provider": "demo"},
            {"name": "small", "provider": "demo"},
            {"name": "router-random-0.5", "provider": "router", "strong": "big", "weak": "small"},
        ]
    }
    providers = build_providers(parse_registry(doc), settings_for(tmp_path))
    routed = providers["router-random-0.5"]
    assert routed.targets == {"big": providers["big"], "small": providers["small"]}
    assert routed.info.kind == "router"


# ---------------------------------------------------------------- through the gateway


def test_trained_router_answers_through_its_target_with_the_sdk(tmp_path, upstreams):
    trained_mf(tmp_path)
    router = {"name": "router-mf-0.75", "provider": "router", "strong": "big", "weak": "small"}
    with gateway(tmp_path, registry_doc(upstreams, router)) as url:
        client = sdk(url)
        raw = client.chat.completions.with_raw_response.create(
            model="router-mf-0.75", messages=[{"role": "user", "content": MATH}]
        )
        reply = raw.parse()
        assert raw.headers["x-arena-routed-model"] == "big"
        assert reply.model == "big"
        assert reply.choices[0].message.content == "The strong upstream answers"
        assert reply.usage.completion_tokens == 4
        # The upstream was addressed as the target, with the target's own upstream name.
        assert upstreams["strong"][0].requests[-1]["model"] == "big"

        raw = client.chat.completions.with_raw_response.create(
            model="router-mf-0.75",
            messages=[{"role": "user", "content": CHAT}],
            stream=True,
            stream_options={"include_usage": True},
        )
        assert raw.headers["x-arena-routed-model"] == "small"
        chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "The weak upstream answers"
        assert {c.model for c in chunks} == {"small"}
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4

        # A plain text completion routes the same way.
        done = client.completions.create(model="router-mf-0.75", prompt=MATH)
        assert done.model == "big"

        ids = {m.id for m in client.models.list()}
        assert {"router-mf-0.75", "big", "small"} <= ids
        metrics = httpx.get(url + "/metrics", timeout=10).text
        assert 'arena_routed_requests_total{model="router-mf-0.75",target="big"} 2.0' in metrics
        assert 'arena_routed_requests_total{model="router-mf-0.75",target="small"} 1.0' in metrics


def test_random_router_uses_both_targets_and_is_stable_per_prompt(tmp_path, upstreams):
    router = {"name": "router-random-0.5", "provider": "router", "strong": "big", "weak": "small"}
    prompts, _ = make_prompts(24, ["math", "chat"], seed=5)
    with gateway(tmp_path, registry_doc(upstreams, router)) as url:
        client = sdk(url)

        def chosen(prompt: str) -> str:
            messages = [{"role": "user", "content": prompt}]
            return client.chat.completions.create(
                model="router-random-0.5", messages=messages
            ).model

        picks = [chosen(p) for p in prompts]
        assert set(picks) == {"big", "small"}
        assert [chosen(p) for p in prompts[:6]] == picks[:6]


def test_cascade_over_costed_models(tmp_path, upstreams):
    base = {"provider": "router", "router": "random", "strong": "big"}
    costs = [{"name": "big", "cost": 10}, {"name": "small", "cost": 1}]
    doc = registry_doc(
        upstreams,
        {"name": "always-cheap", "threshold": 0.0, "models": costs, **base},
        {"name": "never-cheap", "threshold": 1.0, "models": costs, **base},
    )
    with gateway(tmp_path, doc) as url:
        client = sdk(url)
        messages = [{"role": "user", "content": CHAT}]
        assert client.chat.completions.create(model="always-cheap", messages=messages).model == (
            "small"
        )
        assert client.chat.completions.create(model="never-cheap", messages=messages).model == (
            "big"
        )


def test_a_client_cannot_name_a_router_or_a_target_of_its_own(tmp_path, upstreams):
    router = {"name": "router-random-0.5", "provider": "router", "strong": "big", "weak": "small"}
    with gateway(tmp_path, registry_doc(upstreams, router)) as url:
        client = sdk(url)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="router-random-0.1", messages=[{"role": "user", "content": "hi"}]
            )
        # Unknown fields are refused rather than read as routing instructions.
        response = httpx.post(
            url + "/v1/chat/completions",
            json={
                "model": "router-random-0.5",
                "messages": [{"role": "user", "content": "hi"}],
                "strong": "http://evil.example/v1",
            },
            timeout=10,
        )
        assert response.status_code == 200
        assert response.json()["model"] in ("big", "small")
        assert all("evil" not in str(h) for c, _ in upstreams.values() for h in c.headers)


def test_upstream_errors_are_the_targets_own(tmp_path, upstreams):
    doc = registry_doc(
        upstreams,
        {"name": "router-random-0", "provider": "router", "strong": "broken", "weak": "small"},
    )
    messages = [{"role": "user", "content": "hello"}]
    with gateway(tmp_path, doc) as url:
        client = sdk(url)
        with pytest.raises(openai.APIStatusError) as direct:
            client.chat.completions.create(model="broken", messages=messages)
        with pytest.raises(openai.APIStatusError) as routed:
            client.chat.completions.create(model="router-random-0", messages=messages)
        assert routed.value.status_code == direct.value.status_code == 502
        assert routed.value.body == direct.value.body
        with pytest.raises(openai.APIStatusError) as streamed:
            list(
                client.chat.completions.create(
                    model="router-random-0", messages=messages, stream=True
                )
            )
        assert streamed.value.status_code == 502
        metrics = httpx.get(url + "/metrics", timeout=10).text
        assert 'arena_upstream_errors_total{code="upstream_error",model="broken"} 3.0' in metrics


def test_an_error_mid_stream_reaches_the_client_as_from_the_target(tmp_path, upstreams):
    doc = registry_doc(
        upstreams,
        {"name": "router-random-0", "provider": "router", "strong": "midway", "weak": "small"},
    )
    messages = [{"role": "user", "content": "hello there friend"}]
    with gateway(tmp_path, doc) as url:
        client = sdk(url)
        seen = {}
        for model in ("midway", "router-random-0"):
            text = []
            with pytest.raises(openai.APIError) as failed:
                for chunk in client.chat.completions.create(
                    model=model, messages=messages, stream=True
                ):
                    text.extend(c.delta.content or "" for c in chunk.choices)
            seen[model] = ("".join(text), failed.value.message)
        assert seen["router-random-0"] == seen["midway"]
        assert seen["midway"][0]  # some text arrived before the error


def test_a_client_leaving_mid_stream_cancels_the_upstream(tmp_path, upstreams):
    config, _ = upstreams["strong"]
    config.reply = None
    config.token_count = 400
    config.token_interval_s = 0.05
    router = {"name": "router-random-0", "provider": "router", "strong": "big", "weak": "small"}
    with gateway(tmp_path, registry_doc(upstreams, router)) as url:
        body = {"model": "router-random-0", "messages": [{"role": "user", "content": MATH}]}
        with httpx.stream(
            "POST", url + "/v1/chat/completions", json={**body, "stream": True}, timeout=30
        ) as response:
            assert response.headers["x-arena-routed-model"] == "big"
            for line in response.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    break
        wait_until(config.disconnected.is_set, timeout_s=20, what="upstream not cancelled")

        def settled() -> bool:
            text = httpx.get(url + "/metrics", timeout=10).text
            return 'arena_requests_in_flight{endpoint="chat"} 0.0' in text

        wait_until(settled, timeout_s=20, what="the request never finished")


def test_router_on_embeddings_embeds_each_prompt_through_the_registry(tmp_path, upstreams):
    from arena.providers.demo import DemoProvider
    from arena.routing.featurizers import EmbeddingFeaturizer

    featurizer = EmbeddingFeaturizer(DemoProvider("embedder"), "embedder")
    try:
        data = pair_battles(300, seed=3)
        router = train_router("mf", data, featurizer=featurizer, strong=STRONG, weak=WEAK)
        rates = router.strong_win_rate([MATH, CHAT])
    finally:
        featurizer.close()
    save_router(router, tmp_path / "mf-embed")
    threshold = round(float(rates.mean()), 3)
    doc = registry_doc(
        upstreams,
        {
            "name": "routed",
            "provider": "router",
            "router": str(tmp_path / "mf-embed"),
            "threshold": threshold,
            "strong": "big",
            "weak": "small",
            "embed_model": "embedder",
        },
    )
    doc["models"].append({"name": "embedder", "provider": "demo"})
    with gateway(tmp_path, doc) as url:
        client = sdk(url)
        for prompt, expected in ((MATH, "big"), (CHAT, "small"), (MATH, "big")):
            messages = [{"role": "user", "content": prompt}]
            assert client.chat.completions.create(model="routed", messages=messages).model == (
                expected
            )
    # Each distinct prompt was embedded once, and cached on disk under the data directory.
    assert len(list((tmp_path / "data" / "embedding-cache").rglob("*.npy"))) == 2


@pytest.mark.parametrize(
    ("weak", "message"),
    [("small", "router 'mf': no trained router"), ("nope", "'nope' is not a model")],
)
def test_serve_refuses_an_unusable_router_with_exit_code_2(tmp_path, weak, message):
    from typer.testing import CliRunner

    from arena.cli import app

    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n"
        "  - {name: big, provider: demo}\n"
        "  - {name: small, provider: demo}\n"
        f"  - {{name: router-mf-0.5, provider: router, strong: big, weak: {weak}}}\n"
    )
    env = {
        "ARENA_DATA_DIR": str(tmp_path / "data"),
        "ARENA_DATABASE_URL": f"sqlite:///{tmp_path / 'arena.db'}",
    }
    result = CliRunner().invoke(
        app, ["serve", "--config", str(config), "--port", "1"], env=env, catch_exceptions=False
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
