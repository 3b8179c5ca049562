"""API keys end to end: created and revoked with the CLI, enforced by a running gateway."""

from __future__ import annotations

import re
import time

import httpx
import openai
import pytest
from typer.testing import CliRunner

from arena.cli import app as cli
from support.processes import PROCESS_DEADLINE_S, start_process

USER = [{"role": "user", "content": "Say hello"}]


def _cli(settings, *args: str):
    env = {"ARENA_DATABASE_URL": settings.database_url, "ARENA_DATA_DIR": str(settings.data_dir)}
    result = CliRunner().invoke(cli, list(args), env=env)
    return result


def _create(settings, name: str, *extra: str) -> str:
    result = _cli(settings, "keys", "create", name, *extra)
    assert result.exit_code == 0, result.output
    return re.search(r"^(sk-arena-\S+)$", result.output, re.M).group(1)


@pytest.fixture
def keyed(standin, gateway_factory, make_settings, make_providers, database_url):
    """A gateway with one key, on SQLite and on PostgreSQL."""
    config, api_root = standin
    settings = make_settings(database_url=database_url)
    key = _create(settings, "alice")
    with gateway_factory(settings, make_providers(api_root, settings)) as (url, _app):
        yield url, settings, key, config


def test_keys_cli_create_list_revoke(make_settings):
    settings = make_settings()
    key = _create(settings, "ci-bot", "--rpm", "10", "--tpm", "500")
    listing = _cli(settings, "keys", "list")
    assert listing.exit_code == 0
    assert "ci-bot" in listing.output and key[:17] in listing.output
    assert key not in listing.output  # the secret is shown once, at creation only
    assert "active" in listing.output
    revoked = _cli(settings, "keys", "revoke", key[:17])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in _cli(settings, "keys", "list").output
    again = _cli(settings, "keys", "revoke", key[:17])
    assert again.exit_code == 1


def test_missing_bad_and_revoked_keys_get_401(keyed, make_client):
    url, settings, key, _ = keyed
    assert make_client(url, key).chat.completions.create(model="standin", messages=USER)
    with pytest.raises(openai.AuthenticationError) as info:
        make_client(url, "sk-arena-not-a-real-key").chat.completions.create(
            model="standin", messages=USER
        )
    assert info.value.status_code == 401
    assert info.value.body["code"] == "invalid_api_key"
    no_key = httpx.get(url + "/v1/models")
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"

    assert _cli(settings, "keys", "revoke", key).exit_code == 0
    time.sleep(settings.key_cache_ttl_s + 0.1)  # the documented revocation delay
    with pytest.raises(openai.AuthenticationError):
        make_client(url, key).chat.completions.create(model="standin", messages=USER)


def test_requests_per_minute_limit(standin, gateway_factory, make_settings, make_providers):
    config, api_root = standin
    settings = make_settings()
    key = _create(settings, "limited", "--rpm", "2")
    other = _create(settings, "unlimited")
    with gateway_factory(settings, make_providers(api_root, settings)) as (url, _):
        sdk = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        sdk.chat.completions.create(model="standin", messages=USER)
        sdk.chat.completions.create(model="standin", messages=USER)
        with pytest.raises(openai.RateLimitError) as info:
            sdk.chat.completions.create(model="standin", messages=USER)
        assert info.value.status_code == 429
        assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
        assert info.value.body["type"] == "rate_limit_error"
        # Limits are per key.
        openai.OpenAI(base_url=url + "/v1", api_key=other, max_retries=0).models.list()
    assert len(config.requests) == 2


def test_tokens_per_minute_limit(standin, gateway_factory, make_settings, make_providers):
    config, api_root = standin
    settings = make_settings()
    key = _create(settings, "thrifty", "--tpm", "12")
    with gateway_factory(settings, make_providers(api_root, settings)) as (url, _):
        sdk = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)
        first = sdk.chat.completions.create(model="standin", messages=USER)
        assert first.usage.total_tokens == 7  # 2 prompt words + 5 answer words
        # Streaming answers count too (usage comes from the upstream's last chunk).
        list(sdk.chat.completions.create(model="standin", messages=USER, stream=True))
        with pytest.raises(openai.RateLimitError) as info:
            sdk.chat.completions.create(model="standin", messages=USER)
        assert "tokens per minute" in info.value.message
        assert int(info.value.response.headers["retry-after"]) >= 1
    assert len(config.requests) == 2


def test_open_gateway_refuses_public_bind_without_keys(make_settings):
    settings = make_settings()
    result = _cli(settings, "serve", "--host", "0.0.0.0", "--port", "1")
    assert result.exit_code == 2
    assert "refusing" in result.output


@pytest.fixture
def redis_url(tmp_path):
    """A throwaway redis-server on a free loopback port (skipped when not installed)."""
    import shutil
    import socket
    import subprocess

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = start_process(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + PROCESS_DEADLINE_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=PROCESS_DEADLINE_S)


def test_limits_are_shared_by_replicas_through_redis(
    standin, gateway_factory, make_settings, make_providers, redis_url
):
    config, api_root = standin
    settings = make_settings(redis_url=redis_url)
    key = _create(settings, "shared", "--rpm", "2")
    with (
        gateway_factory(settings, make_providers(api_root, settings)) as (url_a, _),
        gateway_factory(settings, make_providers(api_root, settings)) as (url_b, _),
    ):
        a = openai.OpenAI(base_url=url_a + "/v1", api_key=key, max_retries=0)
        b = openai.OpenAI(base_url=url_b + "/v1", api_key=key, max_retries=0)
        a.chat.completions.create(model="standin", messages=USER)
        b.chat.completions.create(model="standin", messages=USER)
        with pytest.raises(openai.RateLimitError):
            a.chat.completions.create(model="standin", messages=USER)
        with pytest.raises(openai.RateLimitError):
            b.chat.completions.create(model="standin", messages=USER)
    assert len(config.requests) == 2
