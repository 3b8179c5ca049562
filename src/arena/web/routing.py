"""The web API's route class: CSRF on every unsafe method, body size caps, and every error
mapped to the OpenAI-shaped JSON body — inside the route, so the web app behaves the same
whichever app it is included in.

CSRF is checked before the body is read or validated, so a forged request learns nothing,
not even whether its JSON was well formed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from arena.errors import ArenaError, BadRequest, PayloadTooLarge
from arena.web.sessions import SessionManager

log = logging.getLogger("arena.web")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WEB_SESSION_KEY = "arena.web_session"


def error_response(error: ArenaError) -> JSONResponse:
    return JSONResponse(error.to_body(), status_code=error.status_code, headers=error.headers)


class ValidationFailed(ArenaError):
    status_code = 422
    error_type = "invalid_request_error"
    code = "invalid_body"


def _describe_validation(exc: RequestValidationError) -> ArenaError:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "invalid JSON")
        return BadRequest(f"The request body is not valid JSON: {reason}.", code="malformed_json")
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    first_loc = [str(p) for p in (errors[0].get("loc", ()) if errors else ()) if p != "body"]
    return ValidationFailed(
        "Invalid request: " + "; ".join(parts) + ".", param=first_loc[0] if first_loc else None
    )


def _capped(request: Request, cap: int) -> Request:
    """The same request, but reading more than ``cap`` body bytes raises 413."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise BadRequest("Content-Length is not a number.")
        if int(length) > cap:
            raise PayloadTooLarge(
                f"The request body is {int(length):,} bytes; the limit is {cap:,} bytes."
            )
    received = 0
    receive = request.receive

    async def capped_receive() -> Any:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > cap:
                raise PayloadTooLarge(f"The request body exceeds the limit of {cap:,} bytes.")
        return message

    return Request(request.scope, capped_receive)


def make_route_class(
    sessions: SessionManager, *, body_cap: Callable[[APIRoute], int]
) -> type[APIRoute]:
    """An ``APIRoute`` subclass bound to this web app's session manager and body caps."""

    class WebRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
            handler = super().get_route_handler()
            cap = body_cap(self)

            async def guarded(request: Request) -> Response:
                started = time.perf_counter()
                try:
                    session = None
                    if request.method in UNSAFE_METHODS:
                        session = sessions.require(request)
                        request.scope[WEB_SESSION_KEY] = session
                        request = _capped(request, cap)
                    response = await handler(request)
                    if session is not None:
                        # Activity keeps the session alive (idle expiry counts from here).
                        sessions.set_cookies(response, sessions.touch(session))
                    # Time to the response head (for SSE: until streaming starts).
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
                    return response
                except ArenaError as e:
                    return error_response(e)
                except RequestValidationError as e:
                    return error_response(_describe_validation(e))
                except HTTPException as e:
                    if isinstance(e.__cause__, ArenaError):
                        return error_response(e.__cause__)
                    return error_response(_http_error(e))
                except Exception:
                    log.exception("web request failed: %s %s", request.method, request.url.path)
                    return error_response(ArenaError("Internal error; please try again."))

            return guarded

    return WebRoute


def _http_error(exc: HTTPException) -> ArenaError:
    error = ArenaError(str(exc.detail), headers=dict(exc.headers or {}))
    error.status_code = exc.status_code
    error.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return error
