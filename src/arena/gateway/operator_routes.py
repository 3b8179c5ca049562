"""What the gateway shows its operators: ``/health``, ``/metrics``, ``/openapi.json``, ``/docs``.

``/health`` answers anyone, with ``{"status": "ok"}`` or a 503 ``{"status": "down"}`` and
nothing more: model names, versions and counts are for key holders. The others follow the
keys (``check_operator_access``): open while the gateway is open, an API key once it has
keys; ``/metrics`` also takes ``settings.metrics_token`` (for a Prometheus scraper that
should hold no API key). They replace FastAPI's own schema and docs routes, which check
nothing. A browser cannot send a key, so on a gateway with keys the docs page is for
clients that can; fetch the schema with ``Authorization: Bearer <key>``. ``/redoc`` is not
served.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import Response

from arena.gateway.auth import check_operator_access

log = logging.getLogger("arena.gateway")

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"


def _json(payload: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json")


async def health(request: Request) -> Response:
    """Down while starting or stopping, or when the key store cannot be read (every keyed
    request would fail); the key count is cached, so a probe costs no query."""
    gw = request.app.state.gateway
    up = gw.serving
    if up:
        try:
            await gw.access.active_key_count()
        except Exception:
            log.warning("health: the API key store cannot be read", exc_info=True)
            up = False
    if up:
        return _json({"status": "ok"})
    return _json({"status": "down"}, status_code=503)


async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    gw = request.app.state.gateway
    await check_operator_access(request, gw.access, token=gw.settings.metrics_token)
    return Response(gw.metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    await check_operator_access(request, request.app.state.gateway.access)
    return _json(request.app.openapi())


async def docs(request: Request) -> Response:
    await check_operator_access(request, request.app.state.gateway.access)
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=root + OPENAPI_PATH, title=f"{request.app.title} - API docs"
    )


def add_operator_routes(app: FastAPI) -> None:
    """Plain routes (create the app with FastAPI's ``openapi_url`` and ``docs_url`` off)."""
    for path, endpoint in (
        ("/health", health),
        ("/metrics", metrics),
        (OPENAPI_PATH, openapi),
        (DOCS_PATH, docs),
    ):
        app.router.add_route(path, endpoint, methods=["GET"], include_in_schema=False)
