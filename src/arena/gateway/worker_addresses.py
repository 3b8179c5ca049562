"""Where the gateway may send a registered worker's traffic (prompts, and the key the
operator configured for it).

A worker names its own URL, so a registrant could point the gateway at the cloud's
metadata service or at another link-local address and read what comes back. Those
addresses are refused twice, unless the operator allows them
(``settings.worker_allow_link_local``):

* at registration, by ``check_worker_url``: http(s) only, no user info, the host (a
  literal address, or every address its name resolves to now) must not be refused;
* at every connection, by ``guarded_socket``, the socket factory of the client that
  talks to workers: it sees the exact address about to be dialled, so a name that
  resolves elsewhere later (DNS rebinding) is caught as well.

Addresses are judged by the standard library's ``ipaddress``, including IPv4 addresses
carried inside IPv6 ones (mapped, 6to4, Teredo, NAT64).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from arena.errors import BadRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance-metadata services: AWS, GCP, Azure, Oracle (169.254.169.254), AWS over
# IPv6, AWS ECS task metadata, Alibaba Cloud.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200")
)
METADATA_HOSTNAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
     "instance-data.ec2.internal"}
)  # fmt: skip
# IPv6 forms whose low 32 bits are an IPv4 address: NAT64 (well-known and local-use
# prefixes), IPv4-compatible (deprecated, still routed by some stacks) and IPv4-translated.
_EMBEDS_IPV4_LOW_BITS = tuple(
    ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)
RESOLVE_TIMEOUT_S = 5.0
ALLOW_HINT = "set ARENA_WORKER_ALLOW_LINK_LOCAL=true on the gateway to allow it"


def _carried(ip: IPAddress) -> list[IPAddress]:
    """``ip`` and any IPv4 address it carries."""
    found: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        teredo = ip.teredo
        found += [a for a in (ip.ipv4_mapped, ip.sixtofour, teredo[1] if teredo else None) if a]
        if any(ip in network for network in _EMBEDS_IPV4_LOW_BITS):
            found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def address_refusal(ip: IPAddress) -> str | None:
    """Why the gateway must not send worker traffic to ``ip``; None when it may."""
    for address in _carried(ip):
        if address in METADATA_ADDRESSES:
            return f"a cloud metadata address ({address})"
        if address.is_link_local:
            return f"a link-local address ({address})"
    return None


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise BadRequest(
            f"the worker URL's host {host!r} does not resolve from the gateway", param="url"
        ) from None
    addresses = [_parse_ip(str(info[4][0])) for info in infos]
    return [a for a in addresses if a is not None]


async def check_worker_url(url: str, *, allow_link_local: bool = False) -> str:
    """``url`` (without a trailing slash) if the gateway may call it, else ``BadRequest``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadRequest("the worker URL is not a valid URL", param="url") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise BadRequest("the worker URL must be http:// or https:// with a host", param="url")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("the worker URL must not carry a user name or password", param="url")
    normalized = url.rstrip("/")
    if allow_link_local:
        return normalized
    host = parts.hostname.rstrip(".")
    if host in METADATA_HOSTNAMES:
        raise BadRequest(
            f"the worker URL's host {host!r} is a cloud metadata service; {ALLOW_HINT}",
            param="url",
        )
    literal = _parse_ip(host)
    default_port = 443 if parts.scheme.lower() == "https" else 80
    addresses = [literal] if literal else await _resolve(host, port or default_port)
    for address in addresses:
        reason = address_refusal(address)
        if reason is not None:
            raise BadRequest(
                f"the worker URL's host {host!r} is {reason}; {ALLOW_HINT}", param="url"
            )
    return normalized


def guarded_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """The socket for one connection attempt to a worker (an aiohttp ``socket_factory``):
    refused addresses fail like an unreachable host, so failover moves on."""
    family, type_, proto, _, sockaddr = addr_info
    address = _parse_ip(str(sockaddr[0]))
    reason = address_refusal(address) if address is not None else "not an IP address"
    if reason is not None:
        raise OSError(errno.EACCES, f"worker traffic to {reason} is refused")
    return socket.socket(family=family, type=type_, proto=proto)
