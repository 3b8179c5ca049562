"""A worker registered with every replica of an arena (two gateways, one database) keeps
its model listed and served after one replica stops, past the heartbeat expiry; and
``arena worker --gateway`` takes several URLs (repeated, or separated by commas)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
from typer.testing import CliRunner

from arena.store.db import Database
from arena.store.models import utcnow
from arena.store.workers import live_workers
from arena.worker import parse_gateway_urls, registrations_for, run_registrations
from support.processes import wait_until

USER = [{"role": "user", "content": "Say hello"}]
EXPIRY_S = 2.0


@contextlib.contextmanager
def beating(registrations) -> Iterator[None]:
    """Heartbeat with every gateway from a thread of its own until the block ends."""
    stop = threading.Event()

    async def main() -> None:
        task = asyncio.create_task(run_registrations(registrations))
        while not stop.is_set():
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for reg in registrations:
            await reg.aclose()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def _models(gateway_url: str) -> list[str]:
    try:
        return [m["id"] for m in httpx.get(gateway_url + "/v1/models").json()["data"]]
    except httpx.HTTPError:
        return []


def test_the_model_stays_served_when_one_replica_stops(
    standin, gateway_factory, make_settings, own_database_url, tmp_path
):
    _, api_root = standin
    replicas = [
        make_settings(
            database_url=own_database_url,
            data_dir=tmp_path / name,
            secret_key="shared-secret",
            heartbeat_expiry_s=EXPIRY_S,
        )
        for name in ("replica-a", "replica-b")
    ]
    worker_id = f"w-{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as first, gateway_factory(replicas[1]) as (url_b, _):
        url_a, _ = first.enter_context(gateway_factory(replicas[0]))
        registrations = registrations_for(
            [url_a, f"{url_b}/v1"],
            worker_id=worker_id,
            model_names=["pooled"],
            url=api_root,
            kind="openai_compatible",
            meta={"upstream_models": {"pooled": "standin-model"}},
            interval_s=replicas[0].heartbeat_interval_s,
        )
        with beating(registrations):
            for url in (url_a, url_b):
                wait_until(lambda u=url: "pooled" in _models(u), what=f"pooled listed at {url}")
            assert all(reg.registrations == 1 for reg in registrations)

            first.close()  # replica A stops for good
            stopped_at = utcnow()
            assert _models(url_a) == []

            db = Database(own_database_url)
            try:
                # Alive past a whole expiry after A went: B alone kept the row fresh.
                wait_until(
                    lambda: [
                        w
                        for w in live_workers(db, expiry_s=EXPIRY_S)
                        if w.worker_id == worker_id
                        and w.last_heartbeat_at > stopped_at + timedelta(seconds=EXPIRY_S * 1.5)
                    ],
                    what="heartbeats through the surviving replica past an expiry",
                )
            finally:
                db.dispose()
            assert "pooled" in _models(url_b)
            reply = httpx.post(
                url_b + "/v1/chat/completions",
                json={"model": "pooled", "messages": USER},
                timeout=60,
            )
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"][0]["message"]["content"] == (
                "Hello from the stand-in upstream"
            )


def test_gateway_urls_are_repeatable_and_comma_separated(monkeypatch):
    assert parse_gateway_urls(["http://a:1, http://b:2/v1", "", "http://a:1/", "http://c:3"]) == [
        "http://a:1",
        "http://b:2/v1",
        "http://c:3",
    ]
    import arena.worker
    from arena.cli import app as cli

    calls = []
    monkeypatch.setattr(arena.worker, "run_upstream_worker", lambda *a, **kw: calls.append(kw))
    result = CliRunner().invoke(
        cli,
        [
            "worker",
            "--upstream",
            "http://127.0.0.1:9/v1",
            "--upstream-model",
            "m",
            "--gateway",
            "http://gw-1:8000,http://gw-2:8000",
            "--gateway",
            "http://gw-3:8000/v1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert calls[0]["gateway_urls"] == [
        "http://gw-1:8000",
        "http://gw-2:8000",
        "http://gw-3:8000/v1",
    ]
