"""Worker registration, heartbeats, expiry and dispatch, with stand-in upstreams as workers."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import uuid
from collections import Counter

import httpx
import openai
import pytest

from arena.gateway import dispatch
from arena.store.db import Database
from arena.store.workers import live_workers, remove_worker
from arena.worker import GatewayRegistration
from support.openai_standin import create_app as create_standin
from support.processes import start_process, stop_and_collect, wait_until
from support.servers import StandinConfig, serve_app

USER = [{"role": "user", "content": "Say hello"}]
ARENA = [sys.executable, "-c", "from arena.cli import app; app()"]


def _register(gateway_url: str, worker_id: str, url: str, model: str = "pooled", **kw) -> None:
    response = httpx.post(
        gateway_url + "/internal/workers/register",
        json={
            "worker_id": worker_id,
            "model_names": [model],
            "url": url,
            "kind": "openai_compatible",
            "meta": {"upstream_models": {model: "standin-model"}},
            **kw,
        },
    )
    assert response.status_code == 200, response.text


def _wait_for(predicate, what: str = "condition") -> None:
    wait_until(predicate, what=what)


def _not_found(sdk: openai.OpenAI, model: str) -> bool:
    try:
        sdk.chat.completions.create(model=model, messages=USER)
    except openai.NotFoundError:
        return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_standins():
    good = StandinConfig(reply="from the good worker")
    bad = StandinConfig(reply="from the bad worker")
    with serve_app(create_standin(good)) as good_url, serve_app(create_standin(bad)) as bad_url:
        yield (good, good_url + "/v1"), (bad, bad_url + "/v1")


# ---------------------------------------------------------------- dispatch policies (pure)


def test_shortest_queue_orders_by_load_and_breaks_ties_randomly():
    rng = random.Random(0)
    cands = [
        dispatch.Candidate("busy", queue_length=5, in_flight=0, weight=1),
        dispatch.Candidate("idle", queue_length=0, in_flight=0, weight=1),
        dispatch.Candidate("local", queue_length=0, in_flight=3, weight=1),
    ]
    assert [c.key for c in dispatch.shortest_queue(cands, rng)] == ["idle", "local", "busy"]
    twins = [dispatch.Candidate(k, 0, 0, 1) for k in "ab"]
    firsts = Counter(dispatch.shortest_queue(twins, rng)[0].key for _ in range(400))
    assert 120 < firsts["a"] < 280


def test_weighted_random_follows_weights():
    rng = random.Random(1)
    cands = [dispatch.Candidate("heavy", 0, 0, 3.0), dispatch.Candidate("light", 0, 0, 1.0)]
    firsts = Counter(dispatch.weighted_random(cands, rng)[0].key for _ in range(4000))
    assert firsts["heavy"] / 4000 == pytest.approx(0.75, abs=0.03)
    zero = [dispatch.Candidate("off", 0, 0, 0.0), dispatch.Candidate("on", 0, 0, 1.0)]
    assert [c.key for c in dispatch.weighted_random(zero, rng)] == ["on", "off"]


# ---------------------------------------------------------------- registration protocol


def test_register_heartbeat_expire_and_reregister(
    standin, gateway_factory, make_settings, database_url
):
    config, api_root = standin
    worker_id = f"w-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database is shared per session
    # Long enough that the checks between heartbeats finish inside it on a busy machine.
    settings = make_settings(database_url=database_url, heartbeat_expiry_s=5.0)
    with gateway_factory(settings) as (url, _):
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
        reg = GatewayRegistration(
            gateway_url=url + "/v1",  # a /v1 suffix is tolerated
            worker_id=worker_id,
            model_names=["pooled"],
            url=api_root,
            kind="openai_compatible",
            meta={"upstream_models": {"pooled": "standin-model"}},
            queue_length=lambda: 3,
            interval_s=settings.heartbeat_interval_s,
        )

        async def beat(times: int) -> None:
            try:
                for _ in range(times):
                    await reg.step()
                    await asyncio.sleep(settings.heartbeat_interval_s)
            finally:
                await reg.aclose()

        asyncio.run(beat(3))
        assert reg.registrations == 1
        workers = httpx.get(url + "/internal/workers").json()["data"]
        assert workers[0]["worker_id"] == worker_id and workers[0]["queue_length"] == 3
        assert "pooled" in [m.id for m in sdk.models.list()]
        reply = sdk.chat.completions.create(model="pooled", messages=USER)
        assert reply.choices[0].message.content == "Hello from the stand-in upstream"
        assert config.requests[-1]["model"] == "standin-model"

        # Missed heartbeats: the worker expires and its model has no worker left.
        _wait_for(lambda: _not_found(sdk, "pooled"), what="the silent worker to expire")

        # The gateway forgot it (expired row deleted, or removed by hand): the next
        # heartbeat is answered "unknown worker" and the worker registers again.
        db = Database(settings.database_url)
        remove_worker(db, worker_id)
        asyncio.run(beat(1))
        assert reg.registrations == 2
        assert [w.worker_id for w in live_workers(db, expiry_s=5)] == [worker_id]
        db.dispose()
        _wait_for(lambda: "pooled" in [m.id for m in sdk.models.list()], what="re-registration")
        assert sdk.chat.completions.create(model="pooled", messages=USER).choices


def test_registration_needs_the_secret_when_configured(gateway_factory, make_settings):
    with gateway_factory(make_settings(worker_secret="s3cret")) as (url, _):
        body = {"worker_id": "w", "model_names": ["m"], "url": "http://127.0.0.1:9/v1"}
        denied = httpx.post(url + "/internal/workers/register", json=body)
        assert denied.status_code == 401
        wrong = httpx.post(
            url + "/internal/workers/register", json=body, headers={"authorization": "Bearer no"}
        )
        assert wrong.status_code == 401
        allowed = httpx.post(
            url + "/internal/workers/register",
            json=body,
            headers={"authorization": "Bearer s3cret"},
        )
        assert allowed.status_code == 200
        bad_url = httpx.post(
            url + "/internal/workers/register",
            json={**body, "url": "ftp://x"},
            headers={"authorization": "Bearer s3cret"},
        )
        assert bad_url.status_code == 400 and bad_url.json()["error"]["param"] == "url"


# ---------------------------------------------------------------- failover before the first token


@pytest.mark.parametrize("fault", ["500", "slow_first_token", "refused"])
def test_failure_before_first_token_goes_to_another_worker(
    two_standins, gateway_factory, make_settings, fault
):
    (_good, good_url), (bad, bad_url) = two_standins
    if fault == "refused":
        bad_url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    else:
        bad.fault = fault
    settings = make_settings(dispatch_policy="weighted_random")
    with gateway_factory(settings) as (url, _app):
        # The failing worker is almost always tried first.
        _register(url, "bad", bad_url, weight=1000.0)
        _register(url, "good", good_url, weight=0.001)
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
        reply = sdk.chat.completions.create(model="pooled", messages=USER)
        assert reply.choices[0].message.content == "from the good worker"
        stream = sdk.chat.completions.create(model="pooled", messages=USER, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "from the good worker"
        if fault != "refused":
            assert bad.requests, "the failing worker was never tried"
        metrics = httpx.get(url + "/metrics").text
        assert 'arena_upstream_errors_total{code="' in metrics


def test_failure_after_first_token_is_the_clients(two_standins, gateway_factory, make_settings):
    (good, good_url), (bad, bad_url) = two_standins
    bad.fault = "drop"
    with gateway_factory(make_settings(dispatch_policy="weighted_random")) as (url, _):
        _register(url, "bad", bad_url, weight=1000.0)
        _register(url, "good", good_url, weight=0.001)
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
        with pytest.raises(openai.APIError):
            for _ in sdk.chat.completions.create(model="pooled", messages=USER, stream=True):
                pass
        assert not good.requests  # not retried elsewhere once tokens had gone out
        # The broken worker is tried last for a while, so the next request succeeds.
        reply = sdk.chat.completions.create(model="pooled", messages=USER)
        assert reply.choices[0].message.content == "from the good worker"


def test_shortest_queue_spreads_concurrent_requests(two_standins, gateway_factory, make_settings):
    (a, a_url), (b, b_url) = two_standins
    for config in (a, b):
        # Answers last seconds, so all eight are in flight together even on a busy machine.
        config.token_count, config.token_interval_s = 10, 0.3
    with gateway_factory(make_settings()) as (url, _):
        _register(url, "a", a_url)
        _register(url, "b", b_url)

        async def burst() -> None:
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as sdk:
                await asyncio.gather(
                    *(sdk.chat.completions.create(model="pooled", messages=USER) for _ in range(8))
                )

        asyncio.run(burst())
    # In-flight counts steer the burst: each worker gets half (ties are random, loads not).
    assert len(a.requests) == 4 and len(b.requests) == 4


# ---------------------------------------------------------------- arena worker --upstream


def test_upstream_worker_command(standin, gateway_factory, make_settings):
    config, api_root = standin
    settings = make_settings()
    with gateway_factory(settings) as (url, _):
        env = {**os.environ, "ARENA_HEARTBEAT_INTERVAL_S": "0.2"}
        process = start_process(
            [*ARENA, "worker", "--upstream", api_root,
             "--upstream-model", "standin-model", "--name", "hosted", "--gateway", url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            sdk = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
            _wait_for(lambda: "hosted" in [m.id for m in sdk.models.list()], "the upstream worker")
            reply = sdk.chat.completions.create(model="hosted", messages=USER)
            assert reply.choices[0].message.content == "Hello from the stand-in upstream"
            workers = httpx.get(url + "/internal/workers").json()["data"]
            assert workers[0]["kind"] == "openai_compatible" and workers[0]["healthy"]
            # Health comes from probing the upstream's /models.
            config.fault = "500"
            _wait_for(
                lambda: not httpx.get(url + "/internal/workers").json()["data"][0]["healthy"],
                "the failing probe to be reported",
            )
        finally:
            output = stop_and_collect(process)
        assert process.returncode == 0, output
        # A clean stop deregisters at once.
        assert httpx.get(url + "/internal/workers").json()["data"] == []


def test_models_command_lists_configured_models_and_live_workers(
    standin, gateway_factory, make_settings, tmp_path
):
    from typer.testing import CliRunner

    from arena.cli import app as cli

    _, api_root = standin
    registry = tmp_path / "arena.yaml"
    registry.write_text(
        "models:\n"
        "  - name: hosted-model\n"
        "    provider: openai_compatible\n"
        f"    base_url: {api_root}\n"
        "  - name: pooled\n"
        "    provider: workers\n"
    )
    settings = make_settings()
    with gateway_factory(settings) as (url, _):
        _register(url, "worker-7", api_root)
        result = CliRunner().invoke(
            cli,
            ["models", "--config", str(registry)],
            env={
                "ARENA_DATABASE_URL": settings.database_url,
                "ARENA_DATA_DIR": str(settings.data_dir),
                "ARENA_HEARTBEAT_EXPIRY_S": "30",
                "COLUMNS": "200",
            },
        )
    assert result.exit_code == 0, result.output
    assert "hosted-model" in result.output and "openai_compatible" in result.output
    assert "worker-7" in result.output and api_root in result.output
