"""Who may call the worker registration routes (``/internal/workers/*``).

Registering a worker decides where the gateway sends prompts, so these checks run before
any body is read:

* a request carrying a foreign ``Origin`` (a web page of another site: browsers send
  ``Origin`` on cross-site POSTs) is refused, 403;
* bodies must be ``application/json`` (415): a page can send ``text/plain`` across sites
  without a CORS preflight, never JSON;
* with ``ARENA_WORKER_SECRET`` set, the caller must present it (401), from anywhere;
* without it, while the gateway has API keys, registration is closed (401);
* in open mode (no API keys, no worker secret) only this machine may register: the peer
  must be a loopback address, the request must not have been relayed by a proxy, and it
  must be addressed to a loopback host (``127.0.0.1``, ``::1``, ``localhost``), which
  defeats DNS rebinding (a page whose own name now resolves to 127.0.0.1).
"""

from __future__ import annotations

import hmac
import ipaddress
from urllib.parse import urlsplit

from starlette.requests import Request

from arena.errors import Forbidden, Unauthorized, UnsupportedMediaType
from arena.gateway.auth import bearer_token

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
_OPEN_MODE = "this gateway is open (no API keys and no ARENA_WORKER_SECRET)"
_USE_SECRET = "set ARENA_WORKER_SECRET on the gateway and on the workers to register from elsewhere"


def _origin(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int | None]:
    scheme = scheme.lower()
    return scheme, (host or "").lower().rstrip("."), port or _DEFAULT_PORTS.get(scheme)


def refuse_foreign_origin(request: Request) -> None:
    """403 when an ``Origin`` header names an origin other than the gateway's own."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = _origin(request.url.scheme, request.url.hostname, request.url.port)
    try:
        parts = urlsplit(origin.strip())
        theirs = _origin(parts.scheme, parts.hostname, parts.port)
    except ValueError:
        theirs = None
    if theirs != own:
        raise Forbidden(
            "worker registration refuses requests from web pages of another origin "
            f"(Origin: {origin[:100]!r})",
            code="foreign_origin",
        )


def require_json(request: Request) -> None:
    """415 unless the body is declared ``application/json``."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            "worker registration takes a JSON body: send 'Content-Type: application/json'"
        )


def is_loopback(host: str | None) -> bool:
    """True for a loopback IP address (IPv4-mapped IPv6 included); names are not resolved."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def require_this_machine(request: Request) -> None:
    """Open mode: 403 unless the request comes from, and is addressed to, this machine."""
    peer = request.client.host if request.client else None
    if not is_loopback(peer):
        raise Forbidden(
            f"{_OPEN_MODE}, so it accepts workers only from this machine (loopback), "
            f"not from {peer}; {_USE_SECRET}",
            code="worker_not_local",
        )
    relayed = [h for h in _FORWARDING_HEADERS if h in request.headers]
    if relayed:
        raise Forbidden(
            f"{_OPEN_MODE}, so it refuses worker registration relayed by a proxy "
            f"({relayed[0]} header); {_USE_SECRET}",
            code="worker_not_local",
        )
    host = (request.url.hostname or "").lower().rstrip(".")
    if host != "localhost" and not is_loopback(host):
        raise Forbidden(
            f"{_OPEN_MODE}, so worker registration must be addressed to 127.0.0.1, ::1 or "
            f"localhost, not {host!r}; {_USE_SECRET}",
            code="worker_not_local",
        )


async def admit_worker_request(
    request: Request, *, secret: str | None, json_body: bool = True
) -> None:
    """Raise the right 4xx unless this caller may use the worker registration routes."""
    refuse_foreign_origin(request)
    if json_body:
        require_json(request)
    if secret:
        token = bearer_token(request)
        if token is None or not hmac.compare_digest(token.encode(), secret.encode()):
            raise Unauthorized("worker registration needs the gateway's worker secret")
        return
    if await request.app.state.gateway.access.active_key_count() > 0:
        raise Unauthorized(
            "this gateway has API keys, so workers need a shared secret: set "
            "ARENA_WORKER_SECRET on the gateway and on the workers"
        )
    require_this_machine(request)
