"""Two replicas on one database share the turn guard: the same message posted to both at
once streams exactly once (200 and 409), and a battle whose streaming process died is
usable again from the other replica once the lease lapses."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from arena.store import turn_leases
from arena.store.models import Message, utcnow
from arena.web import battle_access
from support.processes import wait_until
from support.web_fakes import ArenaClient, ScriptedProvider

SLOW_REPLY = "one two three four five six seven eight"


def slow_pair() -> list[ScriptedProvider]:
    return [ScriptedProvider(name, reply=SLOW_REPLY, interval_s=0.1) for name in ("left", "right")]


def same_session(client: ArenaClient, url: str) -> ArenaClient:
    """A client of another replica that carries this client's session cookies."""
    other = ArenaClient(url)
    for cookie in client.http.cookies.jar:
        other.http.cookies.set(cookie.name, cookie.value)
    other.csrf = client.csrf
    return other


def test_the_same_message_on_two_replicas_streams_once(arena_server, own_database_url):
    first = arena_server(slow_pair(), database_url=own_database_url)
    second = arena_server(slow_pair(), database_url=own_database_url)
    c1 = first.client()
    c2 = same_session(c1, second.url)
    battle_id = c1.new_battle("side_by_side", ["left", "right"])
    results: dict[str, int] = {}
    start = threading.Barrier(2)

    def post(name: str, client: ArenaClient) -> None:
        start.wait()
        response, _ = client.send(battle_id, "race")
        results[name] = response.status_code

    threads = [threading.Thread(target=post, args=p) for p in (("1", c1), ("2", c2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 409]
    with first.db.session(read_only=True) as session:
        users = session.query(Message).filter(Message.role == "user").count()
    assert users == 2  # one user message per side: the turn was stored once
    # The lease is gone the moment the stream ended: the next message goes anywhere.
    assert c2.send(battle_id, "next")[0].status_code == 200
    assert c1.send(battle_id, "and again")[0].status_code == 200
    c1.close()
    c2.close()


@pytest.mark.parametrize("ttl_s", [1.0])
def test_a_dead_replicas_turn_lapses_and_the_battle_is_usable(
    arena_server, own_database_url, monkeypatch, ttl_s
):
    monkeypatch.setattr(battle_access, "TURN_LEASE_S", ttl_s)
    survivor = arena_server(slow_pair(), database_url=own_database_url)
    client = survivor.client()
    battle_id = client.new_battle("side_by_side", ["left", "right"])
    # A replica that took the turn and died at once: its lease is never renewed.
    now = utcnow()
    assert turn_leases.acquire_turn(survivor.db, battle_id, "dead", now=now, ttl_s=ttl_s)
    refused = client.send(battle_id, "while it streams")[0]
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "battle_streaming"
    wait_until(
        lambda: client.send(battle_id, "after it died")[0].status_code == 200,
        what="the battle to be usable once the dead replica's lease lapsed",
    )
    assert utcnow() - now >= timedelta(seconds=ttl_s)
    client.close()


def test_a_lease_is_renewed_while_a_long_turn_streams(arena_server, own_database_url, monkeypatch):
    ttl_s = 0.6
    monkeypatch.setattr(battle_access, "TURN_LEASE_S", ttl_s)
    # 30 words at 0.2 s each: the turn streams for at least 6 s, ten lease periods.
    long_pair = [
        ScriptedProvider(name, reply=" ".join(["word"] * 30), interval_s=0.2)
        for name in ("left", "right")
    ]
    many = {"requests_per_session": "100000/minute", "requests_per_ip": "100000/minute"}
    first = arena_server(long_pair, database_url=own_database_url, settings=many)
    second = arena_server(slow_pair(), database_url=own_database_url, settings=many)
    c1 = first.client()
    c2 = same_session(c1, second.url)
    battle_id = c1.new_battle("side_by_side", ["left", "right"])
    thread = threading.Thread(target=c1.send, args=(battle_id, "a long one"))
    thread.start()
    try:
        wait_until(lambda: first.providers["left"].requests, what="the long turn to start")
        started = time.monotonic()
        late_refusals = 0
        # Well inside the 6 s the turn streams, past several lease periods: still held.
        while (elapsed := time.monotonic() - started) < 3.0:
            response = c2.send(battle_id, "cut in")[0]
            assert response.status_code == 409, response.text
            late_refusals += elapsed > 2 * ttl_s
        assert late_refusals >= 1
    finally:
        thread.join()
    assert c2.send(battle_id, "after it ended")[0].status_code == 200
    c1.close()
    c2.close()
