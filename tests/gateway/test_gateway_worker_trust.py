"""Nothing a remote party sends decides where the gateway sends a credential or a prompt.

The reported attack (a cross-site ``text/plain`` POST that registers a worker for a demo
model, names ``OPENAI_API_KEY`` in ``meta`` and so receives both the prompts and the key),
and each rule that now stops it: who may register, which models a worker may claim,
which addresses a worker may have, where upstream keys come from, and what of an upstream
error body reaches a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from arena.errors import BadRequest, UpstreamError
from arena.gateway.worker_addresses import check_worker_url, guarded_socket
from arena.providers.openai_compat import OpenAICompatProvider
from arena.providers.registry import ModelSpec, RegistryFile
from arena.providers.upstream_http import Timeouts, UpstreamClient
from arena.server import create_server_app
from arena.store.db import Database
from arena.store.workers import live_workers, register_worker
from support.processes import start_process, stop_and_collect, wait_until
from support.servers import serve_app

CANARY = "canary-key-do-not-send"
USER = [{"role": "user", "content": "my private prompt"}]
ARENA = [sys.executable, "-c", "from arena.cli import app; app()"]
REGISTER = "/internal/workers/register"


# Generous limits: the suite must pass while other processes load both cores.
_post = functools.partial(httpx.post, timeout=60)
_get = functools.partial(httpx.get, timeout=60)


def _wait_for(predicate, what: str = "condition") -> None:
    wait_until(predicate, what=what)


def _registration(model: str, url: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "worker_id": f"w-{model}",
        "model_names": [model],
        "url": url,
        "kind": "openai_compatible",
        "meta": {"upstream_models": {model: "standin-model"}},
    }
    body.update(overrides)
    return body


def _chat(url: str, model: str, **kw: Any) -> httpx.Response:
    body = {"model": model, "messages": USER, "max_tokens": 4, **kw}
    return _post(url + "/v1/chat/completions", json=body)


def _never_sent(config: Any, value: str) -> bool:
    return not any(value in json.dumps(h) for h in config.headers)


def _model_ids(url: str) -> list[str]:
    return [m["id"] for m in _get(url + "/v1/models").json()["data"]]


@contextlib.contextmanager
def _serve_on(app: Any, host: str) -> Iterator[str]:
    # As `arena serve` runs it: X-Forwarded-For is never believed by uvicorn itself.
    config = uvicorn.Config(
        app, host=host, port=0, log_level="warning", access_log=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: server.started or not thread.is_alive(), what="the gateway to start")
        assert server.started, "the gateway did not start"
        yield f"http://{host}:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


@contextlib.contextmanager
def _serve(settings: Any, registry: RegistryFile) -> Iterator[tuple[str, Any]]:
    """The app ``arena serve`` runs, with providers built from ``registry``, on loopback."""
    app = create_server_app(settings, registry)
    with _serve_on(app, "127.0.0.1") as url:
        yield url, app


REGISTRY = RegistryFile(
    models=[
        ModelSpec(name="demo-x", provider="demo", aliases=["xray"], params={"tokens_per_s": 0}),
        ModelSpec(name="pooled", provider="workers", api_key_env="POOL_UPSTREAM_KEY"),
    ]
)


# ---------------------------------------------------------------- the reported attack


def test_the_reported_cross_site_takeover_is_refused(standin, make_settings, monkeypatch):
    config, api_root = standin
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    # `arena serve` with no configuration: the default registry, its demo models, open mode.
    app = create_server_app(make_settings())
    attack = json.dumps(
        {
            "worker_id": "evil",
            "model_names": ["demo-aurora"],
            "url": api_root,
            "kind": "openai_compatible",
            "meta": {"api_key_env": "OPENAI_API_KEY", "upstream_models": {"demo-aurora": "echo"}},
        }
    )
    with serve_app(app) as url:
        refused = _post(
            url + REGISTER,
            content=attack,
            headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "foreign_origin"
        # Without the Origin header, the text/plain body (no CORS preflight) is refused too.
        plain = _post(url + REGISTER, content=attack, headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415, plain.text

        answer = _chat(url, "demo-aurora")
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-arena-backend"] == "static"
        assert _get(url + "/internal/workers").json()["data"] == []
    assert config.requests == []  # the stand-in never saw the prompt
    assert _never_sent(config, CANARY)


def test_a_worker_may_not_claim_a_configured_model(standin, make_settings):
    config, api_root = standin
    with _serve(make_settings(), REGISTRY) as (url, _):
        for name in ("demo-x", "xray"):  # a configured model, and one of its aliases
            taken = _post(url + REGISTER, json=_registration(name, api_root))
            assert taken.status_code == 409, taken.text
            error = taken.json()["error"]
            assert error["param"] == "model_names" and "provider demo" in error["message"]
            assert "provider: workers" in error["message"]
        # Names that only look like a configured or workers model would sit beside it in
        # /v1/models and fool a reader: refused too.
        for i, name in enumerate(
            ("Demo-X", "DEMO-X", "demo-x.", "demo\u200b-x", "ｄｅｍｏ-x", "Pooled")
        ):
            twin = _post(url + REGISTER, json=_registration(name, api_root, worker_id=f"t{i}"))
            assert twin.status_code == 409, (name, twin.text)
            assert "only in case" in twin.json()["error"]["message"]
        # Models the registry gives to workers, and names nothing configures, are fine.
        for name in ("pooled", "free-name"):
            ok = _post(url + REGISTER, json=_registration(name, api_root))
            assert ok.status_code == 200, ok.text
        answer = _chat(url, "demo-x")
        assert answer.status_code == 200 and answer.headers["x-arena-backend"] == "static"
    assert [r["messages"] for r in config.requests] == []


def test_a_stored_worker_never_shadows_a_configured_model(standin, make_settings):
    """Even a worker row that claims a configured model (written by an older version, or a
    replica with another registry) is never routed to for that model."""
    config, api_root = standin
    settings = make_settings()
    with _serve(settings, REGISTRY) as (url, _):
        db = Database(settings.database_url)
        register_worker(
            db,
            worker_id="old-row",
            model_names=["demo-x", "free-name"],
            url=api_root,
            kind="openai_compatible",
        )
        db.dispose()
        _wait_for(lambda: "free-name" in _model_ids(url), what="the pool to see the row")
        answer = _chat(url, "demo-x")
        assert answer.status_code == 200 and answer.headers["x-arena-backend"] == "static"
        assert config.requests == []
        assert _chat(url, "free-name").headers["x-arena-backend"] == "old-row"


# ---------------------------------------------------------------- credentials


@pytest.mark.parametrize("secret", [None, "s3cret"])
def test_a_worker_never_chooses_which_env_var_the_gateway_sends(
    standin, make_settings, monkeypatch, secret
):
    config, api_root = standin
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("ARENA_SECRET_KEY", CANARY + "-secret")
    settings = make_settings(worker_secret=secret)
    auth = {"authorization": f"Bearer {secret}"} if secret else {}
    with _serve(settings, REGISTRY) as (url, _):
        for env in ("OPENAI_API_KEY", "ARENA_SECRET_KEY"):
            body = _registration("free-name", api_root)
            body["meta"]["api_key_env"] = env
            refused = _post(url + REGISTER, json=body, headers=auth)
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["param"] == "meta"
            assert "ARENA_WORKER_UPSTREAM_KEYS" in refused.json()["error"]["message"]

        # A stored row that names one anyway (an older worker's) is not obeyed.
        db = Database(settings.database_url)
        register_worker(
            db,
            worker_id="legacy",
            model_names=["free-name"],
            url=api_root,
            kind="openai_compatible",
            meta={"api_key_env": "ARENA_SECRET_KEY", "upstream_models": {}},
        )
        db.dispose()
        _wait_for(lambda: "free-name" in _model_ids(url), what="the pool to see the row")
        assert _chat(url, "free-name").status_code == 200
    assert config.requests, "the worker was never called"
    assert _never_sent(config, CANARY)
    assert all("authorization" not in h for h in config.headers)


def test_upstream_keys_come_from_the_operator(standin, make_settings, monkeypatch):
    config, api_root = standin
    monkeypatch.setenv("POOL_UPSTREAM_KEY", "pool-key-value")
    monkeypatch.setenv("FREE_UPSTREAM_KEY", "free-key-value")
    settings = make_settings(worker_upstream_keys="free-name=FREE_UPSTREAM_KEY")
    with _serve(settings, REGISTRY) as (url, _):
        for name in ("pooled", "free-name", "unkeyed"):
            assert _post(url + REGISTER, json=_registration(name, api_root)).status_code == 200
        sent = {}
        for name in ("pooled", "free-name", "unkeyed"):
            assert _chat(url, name).status_code == 200
            sent[name] = config.headers[-1].get("authorization")
    assert sent == {
        "pooled": "Bearer pool-key-value",  # the registry's provider: workers entry
        "free-name": "Bearer free-key-value",  # ARENA_WORKER_UPSTREAM_KEYS
        "unkeyed": None,
    }


def test_upstream_worker_command_probes_with_its_key_and_the_gateway_uses_its_own(
    standin, make_settings, monkeypatch
):
    config, api_root = standin
    config.api_key = "gateway-side-key"  # the upstream accepts the operator's key only
    monkeypatch.setenv("POOL_UPSTREAM_KEY", "gateway-side-key")  # the gateway's environment
    settings = make_settings()
    worker_env = {
        **os.environ,
        "ARENA_HEARTBEAT_INTERVAL_S": "0.2",
        "WORKER_PROBE_KEY": "worker-side-key",
    }
    with _serve(settings, REGISTRY) as (url, _):
        process = start_process(
            [*ARENA, "worker", "--upstream", api_root, "--upstream-model", "standin-model",
             "--name", "pooled", "--gateway", url, "--upstream-api-key-env", "WORKER_PROBE_KEY"],
            env=worker_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            _wait_for(lambda: bool(_workers(url)), "the upstream worker to register")
            answer = _chat(url, "pooled")
            assert answer.status_code == 200, answer.text
            db = Database(settings.database_url)
            stored = [w.meta for w in live_workers(db, expiry_s=60)]
            db.dispose()
        finally:
            output = stop_and_collect(process)
        assert process.returncode == 0, output
    assert stored == [{"upstream_models": {"pooled": "standin-model"}}]
    assert config.headers[-1]["authorization"] == "Bearer gateway-side-key"
    assert _never_sent(config, "worker-side-key")


def _workers(url: str) -> list[dict[str, Any]]:
    return _get(url + "/internal/workers").json()["data"]


# ---------------------------------------------------------------- who may register


def test_open_mode_accepts_only_this_machine(standin, make_settings):
    _, api_root = standin
    with _serve(make_settings(), REGISTRY) as (url, _):
        body = _registration("free-name", api_root)
        # DNS rebinding: a page whose own name now resolves to 127.0.0.1.
        rebound = _post(url + REGISTER, json=body, headers={"Host": "evil.example"})
        assert rebound.status_code == 403 and "localhost" in rebound.json()["error"]["message"]
        relayed = _post(url + REGISTER, json=body, headers={"X-Forwarded-For": "203.0.113.9"})
        assert relayed.status_code == 403 and "proxy" in relayed.json()["error"]["message"]
        foreign = _get(url + "/internal/workers", headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        beat = _post(
            url + "/internal/workers/heartbeat",
            content=json.dumps({"worker_id": "w-free-name"}),
            headers={"Content-Type": "text/plain"},
        )
        assert beat.status_code == 415
        # The gateway's own origin is not foreign; a JSON body from this machine registers.
        own = _post(url + REGISTER, json=body, headers={"Origin": url})
        assert own.status_code == 200, own.text
        beat = _post(url + "/internal/workers/heartbeat", json={"worker_id": "w-free-name"})
        assert beat.status_code == 200


def _own_non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (the route to a TEST-NET address;
    no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.mark.parametrize("secret", [None, "s3cret"])
def test_another_machine_registers_only_with_the_worker_secret(standin, make_settings, secret):
    _, api_root = standin
    address = _own_non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    app = create_server_app(make_settings(worker_secret=secret), REGISTRY)
    auth = {"authorization": f"Bearer {secret}"} if secret else {}
    with _serve_on(app, address) as url:
        response = _post(url + REGISTER, json=_registration("free-name", api_root), headers=auth)
        if secret is None:
            assert response.status_code == 403, response.text
            assert "ARENA_WORKER_SECRET" in response.json()["error"]["message"]
        else:
            assert response.status_code == 200, response.text
            # Address rules hold for secret holders too.
            metadata = _registration("free-name", "http://169.254.169.254/latest")
            assert _post(url + REGISTER, json=metadata, headers=auth).status_code == 400


# ---------------------------------------------------------------- where a worker may be


@pytest.mark.parametrize(
    "address",
    [
        "::169.254.169.254",  # IPv4-compatible
        "::ffff:0:a9fe:a9fe",  # IPv4-translated
        "64:ff9b::a9fe:a9fe",  # NAT64, well-known prefix
        "64:ff9b:1::a9fe:a9fe",  # NAT64, local-use prefix
        "2002:a9fe:a9fe::1",  # 6to4
        "::ffff:169.254.1.1",  # IPv4-mapped link-local
    ],
)
def test_metadata_and_link_local_addresses_are_refused_in_every_ipv6_wrapping(address):
    import ipaddress

    from arena.gateway.worker_addresses import address_refusal

    assert address_refusal(ipaddress.ip_address(address)) is not None
    assert address_refusal(ipaddress.ip_address("::ffff:10.0.0.5")) is None  # private is fine


@pytest.mark.parametrize(
    "worker_url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.10.20:8000/v1",
        "http://[fd00:ec2::254]/v1",
        "http://[fe80::1]:8000/v1",
        "http://[::ffff:169.254.169.254]/v1",
        "http://100.100.100.200/latest",
        "http://metadata.google.internal/computeMetadata/v1",
        "ftp://127.0.0.1/v1",
        "file:///etc/passwd",
        "http://user:pw@127.0.0.1:9/v1",
        "http://no-such-host.invalid/v1",
    ],
)
def test_worker_urls_must_be_plain_reachable_http(make_settings, worker_url):
    with _serve(make_settings(), REGISTRY) as (url, _):
        response = _post(url + REGISTER, json=_registration("free-name", worker_url))
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "url"
        assert _workers(url) == []


def test_the_operator_may_allow_link_local_workers(make_settings):
    settings = make_settings(worker_allow_link_local=True)
    with _serve(settings, REGISTRY) as (url, _):
        body = _registration("free-name", "http://169.254.10.20:8000/v1")
        assert _post(url + REGISTER, json=body).status_code == 200


def test_a_name_that_resolves_to_a_metadata_address_is_refused(monkeypatch):
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if host == "innocent.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(BadRequest, match="metadata"):
        asyncio.run(check_worker_url("http://innocent.example/v1"))
    assert asyncio.run(check_worker_url("http://localhost:8000/v1/")) == "http://localhost:8000/v1"


def test_connections_to_refused_addresses_fail_at_connect_time(make_settings):
    """A row the registration checks never saw (or a name that resolves elsewhere later)
    still cannot make the gateway dial a metadata address: the worker pool's sockets
    refuse it, and the request fails over / fails at once."""

    async def call() -> str:
        client = UpstreamClient(socket_factory=guarded_socket)
        provider = OpenAICompatProvider(
            base_url="http://169.254.169.254/v1",
            upstream_model="m",
            timeouts=Timeouts(connect=30, first_token=30, idle=30, total=30),
            client=client,
        )
        try:
            with pytest.raises(UpstreamError) as caught:
                async for _ in provider.stream_chat(_chat_request()):
                    pass
            return caught.value.message
        finally:
            await client.close()

    # Refused before any packet leaves (no connect timeout, no answer from the network).
    message = asyncio.run(call())
    assert "worker traffic to a cloud metadata address" in message
    assert "169.254" not in message

    settings = make_settings()
    with _serve(settings, REGISTRY) as (url, _):
        db = Database(settings.database_url)
        register_worker(
            db, worker_id="stale", model_names=["sneaky"], url="http://169.254.169.254/v1",
            kind="openai_compatible",
        )  # fmt: skip
        db.dispose()
        _wait_for(lambda: "sneaky" in _model_ids(url), what="the pool to see the row")
        answer = _chat(url, "sneaky")
        assert answer.status_code == 502, answer.text
        assert "worker traffic to a cloud metadata address" in answer.json()["error"]["message"]


def _chat_request() -> Any:
    from arena.protocol import ChatCompletionRequest

    return ChatCompletionRequest.model_validate({"model": "m", "messages": USER})


# ---------------------------------------------------------------- upstream error bodies

LEAKY = (
    "upstream exploded at http://10.9.8.7:8000/internal/debug?api_key=sk-live-0123456789abcdef "
    "on gpu-7.corp.internal:8000 (10.9.8.7) with Authorization: Bearer hunter2hunter2 "
    "token d41d8cd98f00b204e9800998ecf8427e; " + "stack frame " * 500
)
SECRETS = ("http://", "10.9.8.7", "sk-live", "hunter2", "gpu-7", "corp.internal", "d41d8cd98f00")


def _leaky_upstream(json_body: bool) -> Starlette:
    async def fail(request: Request) -> Response:
        if json_body:
            return JSONResponse({"error": {"message": LEAKY, "type": "server_error"}}, 500)
        return PlainTextResponse(LEAKY, 500)

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "m", "object": "model"}]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", fail, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


@pytest.mark.parametrize("json_body", [True, False])
def test_upstream_error_bodies_reach_clients_short_and_sanitized(make_settings, json_body):
    with serve_app(_leaky_upstream(json_body)) as upstream:
        registry = RegistryFile(
            models=[
                ModelSpec(name="leaky", provider="openai_compatible", base_url=upstream + "/v1"),
                ModelSpec(name="demo-x", provider="demo"),
            ]
        )
        with _serve(make_settings(), registry) as (url, _):
            worker = _registration("leaky-worker", upstream + "/v1")
            assert _post(url + REGISTER, json=worker).status_code == 200
            for model in ("leaky", "leaky-worker"):
                for stream in (False, True):
                    answer = _chat(url, model, stream=stream)
                    assert answer.status_code == 502, answer.text
                    message = answer.json()["error"]["message"]
                    assert "HTTP 500" in message and "upstream exploded" in message
                    assert len(message) < 320
                    assert not [s for s in SECRETS if s in message], message
                    assert message.endswith("…")  # cut short, the rest never sent
