"""Worker registry repository on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from arena.errors import BadRequest
from arena.store.workers import (
    WorkerInfo,
    expire_workers,
    get_worker,
    heartbeat_worker,
    live_workers,
    register_worker,
    remove_worker,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_register_is_an_upsert(db) -> None:
    info = register_worker(
        db,
        worker_id="w1",
        model_names=["tiny-a", "tiny-b"],
        url="http://127.0.0.1:9001",
        kind="local",
        weight=2.0,
        meta={"gpu": "none"},
        now=T0,
    )
    assert isinstance(info, WorkerInfo)
    assert info.model_names == ("tiny-a", "tiny-b")
    assert (info.weight, info.queue_length, info.healthy) == (2.0, 0, True)
    assert info.registered_at == T0 == info.last_heartbeat_at
    assert info.meta == {"gpu": "none"}

    again = register_worker(
        db,
        worker_id="w1",
        model_names=["tiny-c"],
        url="http://127.0.0.1:9002",
        kind="vllm",
        queue_length=3,
        now=T0 + timedelta(seconds=5),
    )
    assert again.model_names == ("tiny-c",)
    assert (again.url, again.kind, again.queue_length, again.meta) == (
        "http://127.0.0.1:9002",
        "vllm",
        3,
        {},
    )
    assert get_worker(db, "w1") == again
    assert get_worker(db, "nope") is None


def test_heartbeat_live_and_expiry(db) -> None:
    for i in range(3):
        register_worker(
            db, worker_id=f"w{i}", model_names=["m"], url=f"http://h{i}", kind="local", now=T0
        )
    assert heartbeat_worker(db, "w1", queue_length=4, healthy=False, now=T0 + timedelta(seconds=30))
    assert heartbeat_worker(db, "w2", queue_length=1, now=T0 + timedelta(seconds=30))
    assert heartbeat_worker(db, "ghost", queue_length=0) is False

    now = T0 + timedelta(seconds=50)
    live = live_workers(db, expiry_s=45, now=now)
    assert [w.worker_id for w in live] == ["w1", "w2"]
    assert live[0].queue_length == 4 and live[0].healthy is False
    assert [w.worker_id for w in live_workers(db, expiry_s=45, now=now, healthy_only=True)] == [
        "w2"
    ]

    assert expire_workers(db, expiry_s=45, now=now) == 1
    assert get_worker(db, "w0") is None
    assert heartbeat_worker(db, "w0", queue_length=0) is False  # so it re-registers
    assert remove_worker(db, "w1") is True
    assert remove_worker(db, "w1") is False
    assert [w.worker_id for w in live_workers(db, expiry_s=45, now=now)] == ["w2"]


def test_bad_registration_is_refused(db) -> None:
    with pytest.raises(BadRequest):
        register_worker(db, worker_id="w", model_names=[], url="http://x", kind="local")
    with pytest.raises(BadRequest):
        register_worker(db, worker_id="", model_names=["m"], url="http://x", kind="local")
    assert live_workers(db, expiry_s=1e9) == []


def test_racing_registrations_of_one_worker(db) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def go(i: int) -> None:
        barrier.wait()
        try:
            register_worker(
                db, worker_id="same", model_names=[f"m{i}"], url=f"http://h{i}", kind="local"
            )
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [w.worker_id for w in live_workers(db, expiry_s=60)] == ["same"]
