"""Mapping every failure to OpenAI's JSON error shape with the right HTTP status, once."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from arena.errors import ArenaError, BadRequest

log = logging.getLogger("arena.gateway")

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_response(error: ArenaError) -> Response:
    return Response(
        orjson.dumps(error.to_body()),
        status_code=error.status_code,
        media_type="application/json",
        headers=error.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    async def arena_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ArenaError)
        return error_response(exc)

    async def validation_error(request: Request, exc: Exception) -> Response:
        from arena.gateway.request_body import param_name

        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        loc = tuple(p for p in first.get("loc", ()) if p != "body")
        return error_response(
            BadRequest(f"invalid request: {first.get('msg', 'invalid')}", param=param_name(loc))
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        body = {
            "error": {
                "message": str(exc.detail),
                "type": _TYPES.get(exc.status_code, "server_error"),
                "param": None,
                "code": None,
            }
        }
        return Response(
            orjson.dumps(body),
            status_code=exc.status_code,
            media_type="application/json",
            headers=getattr(exc, "headers", None),
        )

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error answering %s %s", request.method, request.url.path)
        body = {
            "error": {
                "message": "internal error in the gateway",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        return Response(orjson.dumps(body), status_code=500, media_type="application/json")

    app.add_exception_handler(ArenaError, arena_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
