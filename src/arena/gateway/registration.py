"""The gateway side of worker registration: ``/internal/workers/*``.

Who may call these routes is decided by ``worker_admission`` (origin, JSON only, the
worker secret, and this machine only while the gateway is open); where a worker may be is
decided by ``worker_addresses``. What a worker may claim is decided here: only models the
registry assigns to workers (``provider: workers``) or names no configured model has —
never a model the gateway's own configuration serves (409). A worker never chooses a
credential: the upstream key the gateway sends comes from the operator's configuration
(see ``arena.server.worker_provider_factory``), so ``meta`` carries only
``upstream_models``, the names the upstream knows the models by.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Set
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from arena.errors import Conflict, NotFound
from arena.gateway.request_body import read_model
from arena.gateway.worker_addresses import check_worker_url
from arena.gateway.worker_admission import admit_worker_request
from arena.gateway.worker_pool import WorkerPool

MAX_REGISTRATION_BYTES = 64 * 1024
# The registry's rule for model names: no whitespace, no leading slash.
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\s/]\S*$")]
KEY_CHOICE = (
    "the gateway's operator chooses upstream keys: api_key_env of the model's "
    "'provider: workers' registry entry, or ARENA_WORKER_UPSTREAM_KEYS"
)


def name_skeleton(name: str) -> str:
    """What a reader sees of a model name: NFKC-normalised, case-folded, without invisible
    (format) characters or trailing dots, so "Demo-A", "demo-a." and "demo\u200b-a" meet."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(c for c in folded if unicodedata.category(c) != "Cf").rstrip(".")


class WorkerMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")
    upstream_models: dict[ModelName, ModelName] = Field(
        default_factory=dict, description="Public model name -> the name the upstream uses."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        # Older workers sent the name of an environment variable for the gateway to read.
        if isinstance(data, dict) and "api_key_env" in data:
            raise ValueError(f"api_key_env is not accepted from workers; {KEY_CHOICE}")
        return data


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Visible ASCII only: the id is echoed in the x-arena-backend response header.
    worker_id: str = Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
    model_names: list[ModelName] = Field(min_length=1, max_length=64)
    url: str = Field(min_length=1, max_length=2000)
    kind: Literal["arena_worker", "openai_compatible"] = "arena_worker"
    weight: float = Field(default=1.0, ge=0)
    queue_length: int = Field(default=0, ge=0)
    meta: WorkerMeta = Field(default_factory=WorkerMeta)

    @model_validator(mode="after")
    def _mapped_models_are_served(self) -> RegisterBody:
        unknown = sorted(set(self.meta.upstream_models) - set(self.model_names))
        if unknown:
            raise ValueError(f"meta.upstream_models names models not in model_names: {unknown}")
        return self


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


def add_worker_routes(
    app: FastAPI,
    *,
    db: Any,
    pool: WorkerPool,
    secret: str | None,
    configured_models: Mapping[str, str] | None = None,
    worker_models: Set[str] = frozenset(),
    allow_link_local: bool = False,
) -> None:
    """``configured_models``: names (and aliases) the gateway's configuration serves, each
    with its provider kind; workers may not claim them, nor names that only look like them
    or like ``worker_models`` (the registry's ``provider: workers`` names)."""
    from arena.store import workers as store

    configured = dict(configured_models or {})
    lookalikes = {name_skeleton(n): n for n in (*configured, *worker_models)}

    async def check(request: Request, *, json_body: bool = True) -> None:
        await admit_worker_request(request, secret=secret, json_body=json_body)

    def refuse_configured(model_names: list[str]) -> None:
        taken = [m for m in model_names if m in configured]
        if taken:
            raise Conflict(
                f"model {taken[0]!r} is served by this gateway's configuration (provider "
                f"{configured[taken[0]]}); a worker may serve only models the registry assigns "
                "to workers (provider: workers) or names no configured model has",
                param="model_names",
            )
        for name in model_names:
            twin = lookalikes.get(name_skeleton(name))
            if twin is not None and name != twin:
                raise Conflict(
                    f"model {name!r} differs from the configured model {twin!r} only in case, "
                    "width, invisible characters or a trailing dot; register it under its "
                    "exact name or choose a distinct one",
                    param="model_names",
                )

    async def register(request: Request) -> Response:
        await check(request)
        body = await read_model(request, RegisterBody, MAX_REGISTRATION_BYTES)
        refuse_configured(body.model_names)
        url = await check_worker_url(body.url, allow_link_local=allow_link_local)
        info = await run_in_threadpool(
            lambda: store.register_worker(
                db,
                worker_id=body.worker_id,
                model_names=body.model_names,
                url=url,
                kind=body.kind,
                weight=body.weight,
                queue_length=body.queue_length,
                meta=body.meta.model_dump(),
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
        await check(request, json_body=False)
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
