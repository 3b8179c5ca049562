"""Arena limits: input size, turns, session expiry, request, vote and upload rates, client IPs.

- ``ArenaLimits`` holds the numbers; the pure checks (``check_input``, ``check_turns``,
  ``check_session``) raise the matching ``arena.errors`` type.
- ``ArenaRateLimiter`` counts requests, votes and image uploads per session and per client
  IP with the `limits` library (moving or fixed window). Counters live in the storage named
  by a URI: ``memory://`` (one process, the default) or ``redis://host:port`` so every
  replica shares them. This is the one place in ``battles/`` that talks to storage, and only
  through the storage object it is given; the window clock is the library's.
- ``client_ip`` finds the real client behind trusted reverse proxies; ``hash_ip`` turns it
  into the keyed hash we store (raw IPs are never stored).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from limits import RateLimitItem, parse_many
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
)

from arena.counter_storage import counter_storage
from arena.errors import BadRequest, PayloadTooLarge, RateLimited

Strategy = Literal["moving-window", "fixed-window"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class ArenaLimits:
    """The arena's limits. Rates use the `limits` notation ("10/minute;100/hour")."""

    max_input_chars: int = 16_000
    max_turns: int = 10
    session_ttl_s: float = 24 * 3600.0
    session_idle_s: float | None = 2 * 3600.0
    requests_per_session: str = "20/minute;300/hour"
    requests_per_ip: str = "60/minute;1000/hour"
    votes_per_session: str = "10/minute;100/hour"
    votes_per_ip: str = "30/minute;300/hour"
    uploads_per_session: str = "10/minute;100/hour"
    uploads_per_ip: str = "30/minute;300/hour"
    strategy: Strategy = "moving-window"

    def __post_init__(self) -> None:
        if self.max_input_chars < 1 or self.max_turns < 1:
            raise ValueError("max_input_chars and max_turns must be at least 1")
        if self.session_ttl_s <= 0 or (
            self.session_idle_s is not None and self.session_idle_s <= 0
        ):
            raise ValueError("session lifetimes must be positive")
        if self.strategy not in ("moving-window", "fixed-window"):
            raise ValueError("strategy must be 'moving-window' or 'fixed-window'")
        for name in (
            "requests_per_session",
            "requests_per_ip",
            "votes_per_session",
            "votes_per_ip",
            "uploads_per_session",
            "uploads_per_ip",
        ):
            value = getattr(self, name)
            try:
                parse_many(value)
            except ValueError as e:
                raise ValueError(f"{name}: {value!r} is not a rate like '10/minute': {e}") from None


# ---- pure checks ------------------------------------------------------------------------


def check_input(text: str, limits: ArenaLimits) -> None:
    """An empty message is a BadRequest; one over ``max_input_chars`` is PayloadTooLarge."""
    if not text.strip():
        raise BadRequest("the message is empty", param="prompt", code="empty_message")
    if len(text) > limits.max_input_chars:
        raise PayloadTooLarge(
            f"the message has {len(text)} characters; the limit is {limits.max_input_chars}",
            param="prompt",
        )


def check_turns(turns_so_far: int, limits: ArenaLimits) -> None:
    """Refuse a new turn once a conversation has ``max_turns`` turns."""
    if turns_so_far >= limits.max_turns:
        raise BadRequest(
            f"this conversation reached its limit of {limits.max_turns} turns; start a new round",
            code="turn_limit_reached",
        )


def session_expired(
    created_at: datetime, last_seen_at: datetime | None, now: datetime, limits: ArenaLimits
) -> bool:
    """True when the session outlived ``session_ttl_s`` or sat idle past ``session_idle_s``."""
    if now - created_at >= timedelta(seconds=limits.session_ttl_s):
        return True
    if limits.session_idle_s is not None and last_seen_at is not None:
        return now - last_seen_at >= timedelta(seconds=limits.session_idle_s)
    return False


def check_session(
    created_at: datetime, last_seen_at: datetime | None, now: datetime, limits: ArenaLimits
) -> None:
    if session_expired(created_at, last_seen_at, now, limits):
        raise BadRequest(
            "your session expired; reload the page to start a new one", code="session_expired"
        )


# ---- counters ---------------------------------------------------------------------------


class ArenaRateLimiter:
    """Per-session and per-IP counters for chat requests, votes and image uploads.

    ``storage_uri``: ``memory://`` (default) or ``redis://127.0.0.1:6379`` (shared by every
    web replica). ``namespace`` keeps several arenas (or test runs) apart in one Redis.
    Each ``hit_*`` call either counts the request or raises ``RateLimited`` carrying the
    seconds until the tightest exhausted window frees up (sent as ``Retry-After``).
    """

    def __init__(
        self,
        limits: ArenaLimits | None = None,
        *,
        storage_uri: str = "memory://",
        namespace: str = "arena",
    ):
        self.limits = limits or ArenaLimits()
        self.namespace = namespace
        self.storage = counter_storage(storage_uri, key_prefix=f"arena-limits:{namespace}")
        strategy: type[RateLimiter] = (
            MovingWindowRateLimiter
            if self.limits.strategy == "moving-window"
            else FixedWindowRateLimiter
        )
        self._limiter = strategy(self.storage)
        self._items: dict[str, list[RateLimitItem]] = {
            "request:session": parse_many(self.limits.requests_per_session),
            "request:ip": parse_many(self.limits.requests_per_ip),
            "vote:session": parse_many(self.limits.votes_per_session),
            "vote:ip": parse_many(self.limits.votes_per_ip),
            "upload:session": parse_many(self.limits.uploads_per_session),
            "upload:ip": parse_many(self.limits.uploads_per_ip),
        }

    async def hit_request(self, *, session_id: str | None, ip_hash: str | None) -> None:
        """Count one chat request (a message, a regenerate) or raise ``RateLimited``."""
        await self._hit("request", session_id=session_id, ip_hash=ip_hash)

    async def hit_vote(self, *, session_id: str | None, ip_hash: str | None) -> None:
        """Count one vote or raise ``RateLimited``."""
        await self._hit("vote", session_id=session_id, ip_hash=ip_hash)

    async def hit_upload(self, *, session_id: str | None, ip_hash: str | None) -> None:
        """Count one image upload (before its bytes are read) or raise ``RateLimited``."""
        await self._hit("upload", session_id=session_id, ip_hash=ip_hash)

    async def reset(self) -> None:
        """Forget every counter of this limiter's storage (Redis: only this namespace's keys)."""
        await self.storage.reset()

    async def _hit(self, action: str, *, session_id: str | None, ip_hash: str | None) -> None:
        checks: list[tuple[RateLimitItem, tuple[str, ...], str]] = []
        for scope, key in (("session", session_id), ("ip", ip_hash)):
            if key:
                for item in self._items[f"{action}:{scope}"]:
                    checks.append((item, (self.namespace, action, scope, key), scope))
        # Look before counting, so one exhausted window does not eat the others' budget.
        for item, ids, scope in checks:
            if not await self._limiter.test(item, *ids):
                await self._refuse(action, item, ids, scope)
        for item, ids, scope in checks:
            if not await self._limiter.hit(item, *ids):
                await self._refuse(action, item, ids, scope)

    async def _refuse(
        self, action: str, item: RateLimitItem, ids: tuple[str, ...], scope: str
    ) -> None:
        stats = await self._limiter.get_window_stats(item, *ids)
        retry = max(1.0, stats.reset_time - time.time())
        what = {"request": "messages", "vote": "votes", "upload": "image uploads"}[action]
        who = "this session" if scope == "session" else "your network address"
        raise RateLimited(
            f"too many {what} from {who} (limit {item}); try again in {int(retry + 0.999)} s",
            retry_after_s=retry,
        )


# ---- client addresses ---------------------------------------------------------------------


def parse_trusted_proxies(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses or CIDR blocks ("10.0.0.0/8", "::1") -> networks; ValueError names a bad one."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy {entry!r} is not an IP address or CIDR") from None
    return tuple(out)


def _parse_ip(value: str) -> IPAddress | None:
    v = value.strip().strip('"')
    if v.startswith("["):  # "[2001:db8::1]:443"
        v = v[1 : v.find("]")] if "]" in v else v[1:]
    elif v.count(":") == 1:  # "203.0.113.7:5123"
        v = v.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(v)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in networks)


def client_ip(
    peer: str | None,
    forwarded_for: str | Sequence[str] | None,
    trusted_proxies: Sequence[IPNetwork | str] = (),
) -> str | None:
    """The client's address, reading ``X-Forwarded-For`` only behind trusted proxies.

    ``peer`` is the TCP peer; ``forwarded_for`` the header value(s) in arrival order. If the
    peer is not a trusted proxy the header is ignored (anyone can send it). Otherwise the
    chain is walked from the right, skipping trusted proxies; the first untrusted address is
    the client. A malformed entry stops the walk: the last good hop is returned, since
    everything left of it was written by the client. ``None`` when there is no usable peer.
    """
    networks = [
        n if not isinstance(n, str) else ipaddress.ip_network(n, strict=False)
        for n in trusted_proxies
    ]
    current = _parse_ip(peer) if peer else None
    if current is None:
        return None
    if not networks or not forwarded_for or not _trusted(current, networks):
        return str(current)
    values = [forwarded_for] if isinstance(forwarded_for, str) else list(forwarded_for)
    hops = [h for v in values for h in v.split(",") if h.strip()]
    for raw in reversed(hops):
        if not _trusted(current, networks):
            break
        ip = _parse_ip(raw)
        if ip is None:
            break
        current = ip
    return str(current)


def hash_ip(ip: str, secret: str | bytes) -> str:
    """HMAC-SHA256 of the address under the server's secret, as hex (stable per secret)."""
    if not secret:
        raise ValueError("hash_ip needs a non-empty secret")
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()
