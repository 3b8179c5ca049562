"""Limits: input size, turns, sessions, rate counters (memory and Redis), client IPs."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from arena.battles.limits import (
    ArenaLimits,
    ArenaRateLimiter,
    check_input,
    check_session,
    check_turns,
    client_ip,
    hash_ip,
    parse_trusted_proxies,
    session_expired,
)
from arena.errors import BadRequest, PayloadTooLarge, RateLimited

REDIS_URL = os.environ.get("ARENA_TEST_REDIS_URL", "redis://127.0.0.1:6379")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_input_length_and_emptiness():
    limits = ArenaLimits(max_input_chars=10)
    check_input("0123456789", limits)
    with pytest.raises(PayloadTooLarge) as e:
        check_input("0123456789!", limits)
    assert e.value.status_code == 413 and "limit is 10" in e.value.message
    with pytest.raises(BadRequest, match="empty"):
        check_input(" \n\t", limits)


def test_turns_per_conversation():
    limits = ArenaLimits(max_turns=3)
    check_turns(2, limits)
    with pytest.raises(BadRequest) as e:
        check_turns(3, limits)
    assert e.value.code == "turn_limit_reached"


def test_session_expiry_absolute_and_idle():
    limits = ArenaLimits(session_ttl_s=3600, session_idle_s=600)
    assert not session_expired(T0, T0, T0 + timedelta(seconds=599), limits)
    assert session_expired(T0, T0, T0 + timedelta(seconds=600), limits)
    later = T0 + timedelta(seconds=3000)
    assert not session_expired(T0, later, later + timedelta(seconds=100), limits)
    assert session_expired(T0, later, T0 + timedelta(seconds=3600), limits)
    no_idle = ArenaLimits(session_ttl_s=3600, session_idle_s=None)
    assert not session_expired(T0, T0, T0 + timedelta(seconds=3599), no_idle)
    with pytest.raises(BadRequest) as e:
        check_session(T0, None, T0 + timedelta(hours=2), limits)
    assert e.value.code == "session_expired"


def test_limits_are_validated():
    with pytest.raises(ValueError, match="votes_per_ip"):
        ArenaLimits(votes_per_ip="lots")
    with pytest.raises(ValueError):
        ArenaLimits(max_turns=0)
    with pytest.raises(ValueError):
        ArenaLimits(strategy="leaky-bucket")  # type: ignore[arg-type]


# ---- counters ----------------------------------------------------------------------------


def redis_available() -> bool:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


@pytest.fixture(params=["memory", "redis"])
def storage_uri(request):
    if request.param == "memory":
        return "memory://"
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    return REDIS_URL


async def test_votes_per_session_and_per_ip(storage_uri):
    limits = ArenaLimits(votes_per_session="3/minute", votes_per_ip="5/minute")
    limiter = ArenaRateLimiter(limits, storage_uri=storage_uri, namespace=uuid.uuid4().hex)
    try:
        for _ in range(3):
            await limiter.hit_vote(session_id="s1", ip_hash="ip1")
        with pytest.raises(RateLimited) as e:
            await limiter.hit_vote(session_id="s1", ip_hash="ip1")
        err = e.value
        assert err.status_code == 429 and "this session" in err.message
        assert 50 <= err.retry_after_s <= 60
        assert 50 <= int(err.headers["Retry-After"]) <= 60
        # Another session behind the same address shares the IP budget: 3 used, 2 left.
        await limiter.hit_vote(session_id="s2", ip_hash="ip1")
        await limiter.hit_vote(session_id="s2", ip_hash="ip1")
        with pytest.raises(RateLimited, match="network address"):
            await limiter.hit_vote(session_id="s3", ip_hash="ip1")
        # The refused vote did not eat s3's own budget; other addresses are untouched.
        await limiter.hit_vote(session_id="s3", ip_hash="ip2")
        # Requests have their own counters.
        await limiter.hit_request(session_id="s1", ip_hash="ip1")
    finally:
        await limiter.reset()


async def test_moving_window_frees_up_after_the_window(storage_uri):
    limits = ArenaLimits(requests_per_session="2/second", requests_per_ip="100/minute")
    limiter = ArenaRateLimiter(limits, storage_uri=storage_uri, namespace=uuid.uuid4().hex)
    try:
        await limiter.hit_request(session_id="s", ip_hash=None)
        await limiter.hit_request(session_id="s", ip_hash=None)
        with pytest.raises(RateLimited) as e:
            await limiter.hit_request(session_id="s", ip_hash=None)
        assert e.value.headers["Retry-After"] == "1"
        await asyncio.sleep(1.1)
        await limiter.hit_request(session_id="s", ip_hash=None)
    finally:
        await limiter.reset()


async def test_fixed_window_strategy():
    limits = ArenaLimits(requests_per_session="1/minute", strategy="fixed-window")
    limiter = ArenaRateLimiter(limits, namespace="fixed")
    await limiter.hit_request(session_id="s", ip_hash="h")
    with pytest.raises(RateLimited):
        await limiter.hit_request(session_id="s", ip_hash="h")


async def test_redis_counters_are_shared_between_limiters():
    if not redis_available():
        pytest.skip("Redis not reachable")
    ns = uuid.uuid4().hex
    limits = ArenaLimits(votes_per_session="2/minute")
    one = ArenaRateLimiter(limits, storage_uri=REDIS_URL, namespace=ns)
    two = ArenaRateLimiter(limits, storage_uri="async+" + REDIS_URL, namespace=ns)
    try:
        await one.hit_vote(session_id="s", ip_hash=None)
        await two.hit_vote(session_id="s", ip_hash=None)
        with pytest.raises(RateLimited):
            await one.hit_vote(session_id="s", ip_hash=None)
    finally:
        await one.reset()


# ---- client IPs ----------------------------------------------------------------------------


PROXIES = parse_trusted_proxies(["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # Not behind a trusted proxy: the header is ignored (anyone can send it).
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),
        # One trusted proxy: the entry it appended is the client.
        ("10.0.0.5", "198.51.100.7", "198.51.100.7"),
        # A client-forged entry on the left is skipped: walk from the right.
        ("10.0.0.5", "6.6.6.6, 198.51.100.7", "198.51.100.7"),
        # Chains of trusted proxies are skipped.
        ("127.0.0.1", "198.51.100.7, 10.1.2.3, 10.9.9.9", "198.51.100.7"),
        # Several header lines count as one list.
        ("10.0.0.5", ["6.6.6.6", "198.51.100.7, 10.0.0.2"], "198.51.100.7"),
        # Only proxies in the chain: the leftmost one.
        ("10.0.0.5", "10.0.0.7, 10.0.0.6", "10.0.0.7"),
        # Garbage stops the walk at the last good hop.
        ("10.0.0.5", "198.51.100.7, not-an-ip", "10.0.0.5"),
        # No header behind a proxy: the proxy itself.
        ("10.0.0.5", None, "10.0.0.5"),
        # Ports, brackets, IPv6 and IPv4-mapped addresses.
        ("10.0.0.5", "198.51.100.7:51234", "198.51.100.7"),
        ("2001:db8::1", "[2001:db9::abcd]:443", "2001:db9::abcd"),
        ("::ffff:10.0.0.5", "192.0.2.44", "192.0.2.44"),
        ("10.0.0.5", "::ffff:192.0.2.44", "192.0.2.44"),
        (None, "1.2.3.4", None),
        ("not-an-ip", None, None),
    ],
)
def test_client_ip_walks_the_chain_from_the_right(peer, xff, expected):
    assert client_ip(peer, xff, PROXIES) == expected


def test_client_ip_without_trusted_proxies_and_bad_config():
    assert client_ip("10.0.0.5", "1.2.3.4", []) == "10.0.0.5"
    assert client_ip("10.0.0.5", "1.2.3.4", ["10.0.0.0/8"]) == "1.2.3.4"
    with pytest.raises(ValueError, match="bogus"):
        parse_trusted_proxies(["bogus"])


def test_ips_are_stored_as_keyed_hashes():
    h = hash_ip("198.51.100.7", "secret-1")
    assert len(h) == 64 and int(h, 16) >= 0 and "198.51.100.7" not in h
    assert h == hash_ip("198.51.100.7", b"secret-1")
    assert h != hash_ip("198.51.100.7", "secret-2")
    assert h != hash_ip("198.51.100.8", "secret-1")
    with pytest.raises(ValueError):
        hash_ip("198.51.100.7", "")
