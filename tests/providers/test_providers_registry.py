"""Registry validation messages, the built-in default and build_providers."""

from __future__ import annotations

import pytest

from arena.config import Settings
from arena.protocol import ChatCompletionRequest
from arena.providers.anthropic import AnthropicProvider
from arena.providers.demo import DemoProvider
from arena.providers.gemini import GeminiProvider
from arena.providers.openai_compat import OpenAICompatProvider
from arena.providers.registry import (
    RegistryError,
    build_providers,
    default_registry,
    load_registry,
    parse_registry,
    registry_for,
)


def test_every_bad_field_is_named_with_its_model():
    doc = {
        "models": [
            {"name": "good", "provider": "demo"},
            {"name": "has space", "provider": "demo"},
            {"name": "x", "provider": "nope"},
            {"name": "loc", "provider": "local"},
            {"name": "v", "provider": "vllm", "base_url": "gpu-host:8000", "max_concurrency": 0},
            {"name": "c", "provider": "anthropic"},
            {"name": "d", "provider": "demo", "device": "tpu", "colour": "red"},
            {"name": "w", "provider": "demo", "arena": {"sampling_weight": -1}},
        ]
    }
    with pytest.raises(RegistryError) as caught:
        parse_registry(doc, "arena.yaml")
    message = str(caught.value)
    assert message.startswith("arena.yaml is invalid:")
    for expected in (
        "models[1] (has space).name",
        "models[2] (x).provider",
        "models[3] (loc): Value error, provider 'local' needs model_path",
        "models[4] (v).base_url: Value error, must start with http:// or https://",
        "models[4] (v).max_concurrency",
        "models[5] (c): Value error, provider 'anthropic' at its public API needs api_key_env",
        "models[6] (d).device: Value error, must be auto, cpu, cuda, cuda:N or mps",
        "models[6] (d).colour: Extra inputs are not permitted",
        "models[7] (w).arena.sampling_weight",
    ):
        assert expected in message, (expected, message)
    assert "models[0]" not in message


def test_strict_battle_targets_must_name_other_models_of_the_file():
    def doc(targets, strict=True):
        arena = {"battle_targets": targets, "strict_targets": strict}
        return {
            "models": [
                {"name": "a", "provider": "demo", "arena": arena},
                {"name": "b", "provider": "demo"},
            ]
        }

    assert parse_registry(doc(["b"])).models[0].arena.battle_targets == ["b"]
    with pytest.raises(RegistryError, match=r"'a': arena.battle_targets \['bb'\]"):
        parse_registry(doc(["b", "bb"]))  # a typo: 'a' would never meet 'bb'
    with pytest.raises(RegistryError, match=r"battle_targets \['a'\]"):
        parse_registry(doc(["a"], strict=False))  # itself
    # A plain (non-strict) target outside the file is only a preference that cannot apply.
    assert parse_registry(doc(["gpt-4o"], strict=False)).models[0].arena.battle_targets


def test_duplicate_names_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(RegistryError, match="'a' appears more than once"):
        parse_registry(
            {"models": [{"name": "a", "provider": "demo"}, {"name": "a", "provider": "demo"}]}
        )
    bad = tmp_path / "arena.yaml"
    bad.write_text("models: [unclosed")
    with pytest.raises(RegistryError, match="not valid YAML"):
        load_registry(bad)
    with pytest.raises(RegistryError, match="cannot read model registry"):
        load_registry(tmp_path / "missing.yaml")
    bad.write_text("- just a list")
    with pytest.raises(RegistryError, match="top level must be a mapping"):
        load_registry(bad)


async def test_build_providers_makes_one_adapter_per_model(tmp_path):
    path = tmp_path / "arena.yaml"
    path.write_text(
        """
models:
  - name: llama
    provider: vllm
    upstream_model: meta-llama/Llama-3-8B
    timeout_s: 30
    params: {temperature: 0.2}
  - name: gpt
    provider: openai
    api_key_env: OPENAI_API_KEY
  - name: claude
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
  - name: gem
    provider: gemini
    api_key_env: GEMINI_API_KEY
    upstream_model: gemini-2.0-flash
  - name: toy
    provider: demo
    params: {style: lists, tokens_per_s: 0, temperature: 0.5}
  - name: pooled
    provider: workers
"""
    )
    settings = Settings(request_timeout_s=100, first_token_timeout_s=50, stream_idle_timeout_s=200)
    providers = build_providers(load_registry(path), settings)
    assert set(providers) == {"llama", "gpt", "claude", "gem", "toy"}  # workers: the gateway's
    llama = providers["llama"]
    assert isinstance(llama, OpenAICompatProvider)
    assert (
        llama.base_url == "http://127.0.0.1:8000/v1"
        and llama.upstream_model == "meta-llama/Llama-3-8B"
    )
    assert (
        llama.timeouts.total == 30
        and llama.timeouts.first_token == 30
        and llama.timeouts.idle == 30
    )
    assert providers["gpt"].base_url == "https://api.openai.com/v1"
    assert providers["gpt"].timeouts.idle == 100 and providers["gpt"].timeouts.first_token == 50
    assert isinstance(providers["claude"], AnthropicProvider)
    assert providers["claude"].base_url == "https://api.anthropic.com/v1"
    assert isinstance(providers["gem"], GeminiProvider)
    assert providers["gem"].base_url == "https://generativelanguage.googleapis.com/v1beta"
    toy = providers["toy"]
    assert isinstance(toy, DemoProvider) and toy.style == "lists" and toy.tokens_per_s == 0
    request = ChatCompletionRequest(
        model="toy", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert [d async for d in toy.stream_chat(request)][-1].usage.completion_tokens == 3
    for p in providers.values():
        await p.aclose()


def test_timeouts_without_settings_use_defaults_and_the_model_limit():
    from arena.providers.upstream_http import Timeouts

    assert Timeouts.from_settings(None) == Timeouts(connect=10, first_token=120, idle=60, total=600)
    assert Timeouts.from_settings(None, 5) == Timeouts(connect=10, first_token=5, idle=5, total=5)
    registry = parse_registry({"models": [{"name": "v", "provider": "vllm", "timeout_s": 9}]})
    assert build_providers(registry)["v"].timeouts.total == 9


def test_bad_demo_style_is_a_registry_error():
    registry = parse_registry(
        {"models": [{"name": "d", "provider": "demo", "params": {"style": "fancy"}}]}
    )
    with pytest.raises(RegistryError, match="model 'd': demo style must be one of"):
        build_providers(registry)


def test_default_registry_has_demo_models_and_probes_ollama(openai_upstream):
    plain = default_registry(ollama_url=None)
    assert [m.name for m in plain.models] == [
        "demo-aurora",
        "demo-basalt",
        "demo-cirrus",
        "demo-delta",
    ]
    assert {m.organization for m in plain.models} == {"Arena demo"}
    assert all("Demo model" in m.description for m in plain.models)
    assert plain.models[3].is_vision
    openai_upstream.config.models = ["llama3.2:latest", "qwen2.5:0.5b"]
    with_ollama = default_registry(ollama_url=openai_upstream.url)
    ollama = [m for m in with_ollama.models if m.provider == "ollama"]
    assert [m.name for m in ollama] == ["llama3.2:latest", "qwen2.5:0.5b"]
    assert ollama[0].resolved_base_url == openai_upstream.url + "/v1"
    providers = build_providers(with_ollama)
    assert isinstance(providers["qwen2.5:0.5b"], OpenAICompatProvider)


def test_default_registry_without_ollama_is_quick():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert len(default_registry(ollama_url=f"http://127.0.0.1:{port}").models) == 4


def test_registry_for_settings(tmp_path):
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - {name: only, provider: demo}\n")
    assert [m.name for m in registry_for(Settings(config_path=path)).models] == ["only"]
