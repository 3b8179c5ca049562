"""The gateway side of worker registration: ``/internal/workers/*``.

Workers present ``settings.worker_secret`` as a bearer token. Without a configured secret,
registration is accepted only while the gateway itself is open (no API keys), which
``arena serve`` allows on loopback only — otherwise anyone holding a client key could
register a worker and receive other people's prompts.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from arena.errors import NotFound, Unauthorized
from arena.gateway.auth import bearer_token
from arena.gateway.request_body import read_model
from arena.gateway.worker_pool import WorkerPool

MAX_REGISTRATION_BYTES = 64 * 1024


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    worker_id: str = Field(min_length=1, max_length=200)
    model_names: list[str] = Field(min_length=1)
    url: str
    kind: str = "arena_worker"
    weight: float = Field(default=1.0, ge=0)
    queue_length: int = Field(default=0, ge=0)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class HeartbeatBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    worker_id: str = Field(min_length=1, max_length=200)
    queue_length: int = Field(default=0, ge=0)
    healthy: bool = True


class DeregisterBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    worker_id: str = Field(min_length=1, max_length=200)


class UnknownWorker(NotFound):
    code = "unknown_worker"


def _ok(payload: dict[str, Any]) -> Response:
    import orjson

    return Response(orjson.dumps(payload), media_type="application/json")


def add_worker_routes(app: FastAPI, *, db: Any, pool: WorkerPool, secret: str | None) -> None:
    from arena.store import workers as store

    async def check(request: Request) -> None:
        token = bearer_token(request)
        if secret:
            if token is None or not hmac.compare_digest(token.encode(), secret.encode()):
                raise Unauthorized("worker registration needs the gateway's worker secret")
            return
        gateway = request.app.state.gateway
        if await gateway.access.active_key_count() > 0:
            raise Unauthorized(
                "this gateway has API keys, so workers need a shared secret: set "
                "ARENA_WORKER_SECRET on the gateway and on the workers"
            )

    async def register(request: Request) -> Response:
        await check(request)
        body = await read_model(request, RegisterBody, MAX_REGISTRATION_BYTES)
        info = await run_in_threadpool(
            lambda: store.register_worker(
                db,
                worker_id=body.worker_id,
                model_names=body.model_names,
                url=body.url,
                kind=body.kind,
                weight=body.weight,
                queue_length=body.queue_length,
                meta=body.meta,
            )
        )
        pool.upsert(info)
        return _ok(
            {
                "worker_id": info.worker_id,
                "registered": True,
                "heartbeat_expiry_s": pool.expiry_s,
            }
        )

    async def heartbeat(request: Request) -> Response:
        await check(request)
        body = await read_model(request, HeartbeatBody, MAX_REGISTRATION_BYTES)
        known = await run_in_threadpool(
            lambda: store.heartbeat_worker(
                db, body.worker_id, queue_length=body.queue_length, healthy=body.healthy
            )
        )
        if not known:
            pool.forget(body.worker_id)
            raise UnknownWorker(f"unknown worker {body.worker_id!r}; register again")
        pool.note_heartbeat(body.worker_id, queue_length=body.queue_length, healthy=body.healthy)
        return _ok({"worker_id": body.worker_id, "known": True})

    async def deregister(request: Request) -> Response:
        await check(request)
        body = await read_model(request, DeregisterBody, MAX_REGISTRATION_BYTES)
        removed = await run_in_threadpool(store.remove_worker, db, body.worker_id)
        pool.forget(body.worker_id)
        return _ok({"worker_id": body.worker_id, "removed": bool(removed)})

    async def listing(request: Request) -> Response:
        await check(request)
        workers = [
            {
                "worker_id": w.worker_id,
                "model_names": list(w.model_names),
                "url": w.url,
                "kind": w.kind,
                "weight": w.weight,
                "queue_length": w.queue_length,
                "healthy": w.healthy,
            }
            for infos in pool.models().values()
            for w in infos
        ]
        unique = {w["worker_id"]: w for w in workers}
        return _ok({"object": "list", "data": list(unique.values())})

    app.add_api_route("/internal/workers/register", register, methods=["POST"])
    app.add_api_route("/internal/workers/heartbeat", heartbeat, methods=["POST"])
    app.add_api_route("/internal/workers/deregister", deregister, methods=["POST"])
    app.add_api_route("/internal/workers", listing, methods=["GET"])
