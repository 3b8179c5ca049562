"""API key checks for the gateway, with a short in-memory cache in front of the database.

Keys live hashed in the database (``arena.store.keys``). Looking one up on every request
would put the database on the hot path, so answers (found, unknown or revoked) are kept for
``settings.key_cache_ttl_s`` seconds: a revoked key stops working within that time on every
gateway replica. With no active keys at all the gateway is open (``arena serve`` only
allows that on a loopback address unless told ``--insecure-open``); once a key has been
seen it stays closed for the life of the process, even if every key is revoked.

``check_operator_access`` guards what only operators should read (``/metrics``, the API
schema and its docs page): open while the gateway is open, a valid key once it has keys,
and an optional extra token (``settings.metrics_token``, for a Prometheus scraper).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from arena.errors import Unauthorized

MAX_CACHED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: an API key, or nobody in particular when the gateway is open."""

    key_id: str | None
    name: str
    rpm_limit: int | None = None
    tpm_limit: int | None = None


OPEN_CALLER = Caller(key_id=None, name="open")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    # Some clients send the key the Anthropic/Azure way.
    return request.headers.get("x-api-key") or request.headers.get("api-key")


class KeyAuthenticator:
    """Resolves bearer tokens to callers; thread-safe enough for one event loop."""

    def __init__(self, db: Any, *, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self._db = db
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, Caller | None]] = {}
        self._active: tuple[float, int] | None = None
        # Once keys exist the gateway stays closed, even if every key is later revoked:
        # revoking the last key must not silently open the gateway to everyone.
        self._closed = False

    def _count_active(self) -> int:
        from arena.store.keys import count_active_keys

        return count_active_keys(self._db)

    def _lookup(self, token: str) -> Caller | None:
        from arena.store.keys import lookup_api_key

        info = lookup_api_key(self._db, token)
        if info is None:
            return None
        return Caller(
            key_id=str(info.id), name=info.name, rpm_limit=info.rpm_limit, tpm_limit=info.tpm_limit
        )

    async def active_key_count(self) -> int:
        now = self._clock()
        if self._active is None or self._active[0] <= now:
            count = await run_in_threadpool(self._count_active)
            self._active = (now + self._ttl, count)
            self._closed = self._closed or count > 0
        return max(self._active[1], int(self._closed))

    async def authenticate(self, request: Request) -> Caller:
        token = bearer_token(request)
        if token is None:
            if await self.active_key_count() == 0:
                return OPEN_CALLER
            raise Unauthorized(
                "missing API key: send it as 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            caller = cached[1]
        else:
            caller = await run_in_threadpool(self._lookup, token)
            if len(self._cache) >= MAX_CACHED_KEYS:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl, caller)
        if caller is not None:
            return caller
        if await self.active_key_count() == 0:
            # An open gateway ignores whatever key a client sends (SDKs always send one).
            return OPEN_CALLER
        raise Unauthorized("invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})


class OpenAccess:
    """No keys at all: used by workers, which sit behind a gateway on a private network."""

    async def authenticate(self, request: Request) -> Caller:
        return OPEN_CALLER

    async def active_key_count(self) -> int:
        return 0


class SharedSecretAccess:
    """One shared secret (a worker behind a gateway that knows ``worker_secret``)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    async def authenticate(self, request: Request) -> Caller:
        token = bearer_token(request)
        if token is None or not hmac.compare_digest(token.encode(), self._secret):
            raise Unauthorized("this worker needs the gateway's worker secret as its API key")
        return OPEN_CALLER

    async def active_key_count(self) -> int:
        return 1


async def check_operator_access(request: Request, access: Any, *, token: str | None = None) -> None:
    """Raise ``Unauthorized`` unless the caller may read an operator endpoint.

    ``token`` (when set) is accepted besides API keys, and once set it is required even
    while the gateway is open: an operator who configured it expects it to be asked for.
    """
    if token:
        given = bearer_token(request)
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            return
        if await access.active_key_count() == 0:
            raise Unauthorized(
                "this endpoint needs the metrics token as 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
    await access.authenticate(request)
