"""What the gateway shows its operators: ``/health``, ``/metrics``, ``/openapi.json``, ``/docs``.

``/health`` answers anyone, with ``{"status": "ok"}`` or a 503 ``{"status": "down"}`` and
nothing more: model names, versions and counts are for key holders. The others follow the
keys (``check_operator_access``): open while the gateway is open, an API key once it has
keys; ``/metrics`` also takes ``settings.metrics_token`` (for a Prometheus scraper that
should hold no API key). They replace FastAPI's own schema and docs routes, which check
nothing. A browser cannot send a key, so on a gateway with keys the docs page is for
clients that can; fetch the schema with ``Authorization: Bearer <key>``. ``/redoc`` is not
served. The docs page loads Swagger UI from the files the ``fastapi-offline`` package ships
(no CDN at run time) under a policy that allows scripts from this origin only.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response

from arena.errors import NotFound
from arena.gateway.auth import check_operator_access

log = logging.getLogger("arena.gateway")

OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
DOCS_ASSETS = DOCS_PATH + "/assets/"
# Swagger UI sets inline styles; scripts come only from this origin.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="{assets}swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{assets}swagger-ui-bundle.js"></script>
<script src="{assets}docs-init.js"></script></body></html>
"""


def _docs_asset_files() -> dict[str, Path]:
    """The three files the docs page loads, by name: Swagger UI's (from the installed
    ``fastapi-offline`` package) and our starter."""
    import fastapi_offline

    swagger = Path(fastapi_offline.__file__).parent / "static"
    return {
        "swagger-ui.css": swagger / "swagger-ui.css",
        "swagger-ui-bundle.js": swagger / "swagger-ui-bundle.js",
        "docs-init.js": Path(__file__).parent / "static" / "docs-init.js",
    }


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
    page = DOCS_PAGE.format(
        title=html.escape(f"{request.app.title} - API docs"),
        assets=html.escape(root + DOCS_ASSETS),
        openapi_url=html.escape(root + OPENAPI_PATH),
    )
    return HTMLResponse(page, headers=DOCS_HEADERS)


async def docs_asset(request: Request) -> Response:
    """Public, like any page's script: the schema, not the viewer, is what keys protect."""
    path = _docs_asset_files().get(request.path_params["name"])
    if path is None:
        raise NotFound("no such file of the docs page")
    return FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})


def add_operator_routes(app: FastAPI) -> None:
    """Plain routes (create the app with FastAPI's ``openapi_url`` and ``docs_url`` off)."""
    for path, endpoint in (
        ("/health", health),
        ("/metrics", metrics),
        (OPENAPI_PATH, openapi),
        (DOCS_PATH, docs),
        (DOCS_ASSETS + "{name}", docs_asset),
    ):
        app.router.add_route(path, endpoint, methods=["GET"], include_in_schema=False)
