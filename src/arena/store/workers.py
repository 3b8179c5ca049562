"""The worker registry table: model servers that register, heartbeat and expire.

Kept in the database so several gateway replicas share one view of the workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from arena.errors import BadRequest
from arena.store.db import Database
from arena.store.models import Worker, check_fits, utcnow


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    worker_id: str
    model_names: tuple[str, ...]
    url: str
    kind: str
    weight: float
    queue_length: int
    healthy: bool
    registered_at: datetime
    last_heartbeat_at: datetime
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


def _info(row: Worker) -> WorkerInfo:
    return WorkerInfo(
        worker_id=row.worker_id,
        model_names=tuple(row.model_names),
        url=row.url,
        kind=row.kind,
        weight=row.weight,
        queue_length=row.queue_length,
        healthy=row.healthy,
        registered_at=row.registered_at,
        last_heartbeat_at=row.last_heartbeat_at,
        meta=dict(row.meta or {}),
    )


def register_worker(
    db: Database,
    *,
    worker_id: str,
    model_names: list[str],
    url: str,
    kind: str,
    weight: float = 1.0,
    queue_length: int = 0,
    meta: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> WorkerInfo:
    """Insert or replace a worker (an atomic upsert, so racing registrations are safe)."""
    if not worker_id:
        raise BadRequest("worker_id must not be empty", param="worker_id")
    if not model_names or not all(isinstance(m, str) and m for m in model_names):
        raise BadRequest("model_names must be a non-empty list of names", param="model_names")
    if weight < 0 or queue_length < 0:
        raise BadRequest("weight and queue_length must not be negative")
    check_fits(worker_id, Worker.worker_id, param="worker_id")
    check_fits(url, Worker.url, param="url")
    check_fits(kind, Worker.kind, param="kind")
    now = now or utcnow()
    values = {
        "worker_id": worker_id,
        "model_names": list(model_names),
        "url": url,
        "kind": kind,
        "weight": float(weight),
        "queue_length": int(queue_length),
        "healthy": True,
        "registered_at": now,
        "last_heartbeat_at": now,
        "meta": dict(meta or {}),
    }
    statement = db.conflict_insert(Worker).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[Worker.worker_id],
        set_={k: statement.excluded[k] for k in values if k != "worker_id"},
    )
    with db.session() as session:
        session.execute(statement)
        row = session.get(Worker, worker_id, populate_existing=True)
        assert row is not None
        return _info(row)


def heartbeat_worker(
    db: Database,
    worker_id: str,
    *,
    queue_length: int,
    healthy: bool = True,
    now: datetime | None = None,
) -> bool:
    """Record a heartbeat. False if the worker is unknown (expired), so it re-registers."""
    if queue_length < 0:
        raise BadRequest("queue_length must not be negative", param="queue_length")
    with db.session() as session:
        result = session.execute(
            update(Worker)
            .where(Worker.worker_id == worker_id)
            .values(
                queue_length=int(queue_length),
                healthy=bool(healthy),
                last_heartbeat_at=now or utcnow(),
            )
        )
        return result.rowcount > 0


def remove_worker(db: Database, worker_id: str) -> bool:
    with db.session() as session:
        return session.execute(delete(Worker).where(Worker.worker_id == worker_id)).rowcount > 0


def get_worker(db: Database, worker_id: str) -> WorkerInfo | None:
    with db.session(read_only=True) as session:
        row = session.get(Worker, worker_id)
        return None if row is None else _info(row)


def live_workers(
    db: Database, *, expiry_s: float, now: datetime | None = None, healthy_only: bool = False
) -> list[WorkerInfo]:
    """Workers whose last heartbeat is at most ``expiry_s`` old (healthy or not, unless
    ``healthy_only``), ordered by worker id."""
    cutoff = (now or utcnow()) - timedelta(seconds=expiry_s)
    query = select(Worker).where(Worker.last_heartbeat_at >= cutoff)
    if healthy_only:
        query = query.where(Worker.healthy.is_(True))
    with db.session(read_only=True) as session:
        return [_info(row) for row in session.scalars(query.order_by(Worker.worker_id))]


def expire_workers(db: Database, *, expiry_s: float, now: datetime | None = None) -> int:
    """Delete workers silent for longer than ``expiry_s``; returns how many went."""
    cutoff = (now or utcnow()) - timedelta(seconds=expiry_s)
    with db.session() as session:
        return session.execute(delete(Worker).where(Worker.last_heartbeat_at < cutoff)).rowcount
