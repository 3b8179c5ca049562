"""Moderation, every arena limit, client IPs behind proxies, and CSRF on every POST."""

from __future__ import annotations

import time

from sqlalchemy import select

from arena.battles.limits import ArenaLimits, hash_ip
from arena.battles.moderation import WordListModerator
from arena.store.models import ArenaSession, Battle, Message, Vote
from support.web_fakes import ArenaClient, ScriptedProvider


def _pair(**kwargs):
    return [ScriptedProvider("m-one", **kwargs), ScriptedProvider("m-two", **kwargs)]


def test_flagged_message_is_refused_and_never_sent(arena_server):
    arena = arena_server(_pair(), moderator=WordListModerator(["plutonium recipe"]))
    client = arena.client()
    battle_id = client.new_battle()
    response, _ = client.send(battle_id, "Give me a PLUTONIUM   recipe please")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "content_flagged" and "not sent" in error["message"]
    assert all(not p.requests for p in arena.providers.values())
    with arena.db.session() as s:
        assert s.get(Battle, battle_id).moderation_flagged
        assert s.scalars(select(Message)).all() == []
    # A clean message still works in the same battle.
    response, events = client.send(battle_id, "Tell me about rivers")
    assert response.status_code == 200 and events[-1].event == "end"
    client.close()


def test_input_length_and_turn_limits(arena_server):
    arena = arena_server(_pair(), limits=ArenaLimits(max_input_chars=50, max_turns=2))
    client = arena.client()
    battle_id = client.new_battle()
    too_long = client.send(battle_id, "y" * 51)[0]
    assert too_long.status_code == 413 and "limit is 50" in too_long.json()["error"]["message"]
    assert client.send(battle_id, "   ")[0].status_code == 400
    assert client.send(battle_id, "one")[0].status_code == 200
    assert client.send(battle_id, "two")[0].status_code == 200
    third = client.send(battle_id, "three")[0]
    assert third.status_code == 400 and third.json()["error"]["code"] == "turn_limit_reached"
    client.close()


def test_session_expiry(arena_server):
    # Long enough for the first requests on a busy machine; then time itself must pass.
    arena = arena_server(_pair(), limits=ArenaLimits(session_ttl_s=3.0, session_idle_s=None))
    client = arena.client()
    battle_id = client.new_battle()
    time.sleep(3.2)
    response = client.send(battle_id, "still there?")[0]
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "session_expired"
    # Reloading the page starts a fresh session that works.
    client.start("/")
    assert client.post("/api/battles", json={"mode": "battle"}).status_code == 201
    client.close()


def test_request_and_vote_rates_per_session_and_ip(arena_server):
    limits = ArenaLimits(
        requests_per_session="3/minute",
        requests_per_ip="5/minute",
        votes_per_session="1/minute",
        votes_per_ip="100/minute",
    )
    arena = arena_server(_pair(), limits=limits)
    first = arena.client()
    battle_id = first.new_battle()  # 1
    assert first.send(battle_id, "a")[0].status_code == 200  # 2
    assert first.send(battle_id, "b")[0].status_code == 200  # 3
    limited = first.send(battle_id, "c")[0]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "this session" in limited.json()["error"]["message"]

    # Same IP, new session: the per-IP budget (5) has 2 left.
    second = arena.client()
    other = second.new_battle()  # 4
    assert second.send(other, "d")[0].status_code == 200  # 5
    by_ip = second.send(other, "e")[0]
    assert by_ip.status_code == 429 and "network address" in by_ip.json()["error"]["message"]

    # Votes: one per minute per session.
    assert first.vote(battle_id, "a").status_code == 200
    assert first.vote(battle_id, "b").status_code == 429
    first.close()
    second.close()


def test_forwarded_for_is_trusted_only_from_trusted_proxies(arena_server):
    limits = ArenaLimits(requests_per_ip="2/minute", requests_per_session="100/minute")
    trusting = arena_server(_pair(), limits=limits, settings={"trusted_proxies": ["127.0.0.1"]})
    alice = ArenaClient(trusting.url, headers={"X-Forwarded-For": "203.0.113.7"})
    alice.start()
    bob = ArenaClient(trusting.url, headers={"X-Forwarded-For": "198.51.100.9"})
    bob.start()
    for _ in range(2):
        assert alice.post("/api/battles", json={}).status_code == 201
    assert alice.post("/api/battles", json={}).status_code == 429
    assert bob.post("/api/battles", json={}).status_code == 201  # a different client
    with trusting.db.session() as s:
        hashes = {row.ip_hash for row in s.scalars(select(ArenaSession))}
    assert hash_ip("203.0.113.7", "web-test-secret") in hashes
    raw = (trusting.settings.data_dir / "arena.db").read_bytes()
    assert b"203.0.113.7" not in raw and b"127.0.0.1" not in raw

    # Without trusted proxies the header is ignored: both share 127.0.0.1's budget.
    plain = arena_server(_pair(), limits=limits)
    carol = ArenaClient(plain.url, headers={"X-Forwarded-For": "203.0.113.7"})
    carol.start()
    dave = ArenaClient(plain.url, headers={"X-Forwarded-For": "198.51.100.9"})
    dave.start()
    assert carol.post("/api/battles", json={}).status_code == 201
    assert dave.post("/api/battles", json={}).status_code == 201
    assert carol.post("/api/battles", json={}).status_code == 429
    for c in (alice, bob, carol, dave):
        c.close()


def test_csrf_is_checked_on_every_post(arena_server):
    arena = arena_server(_pair())
    client = arena.client()
    battle_id = client.new_battle()
    client.send(battle_id, "hi")
    posts = [
        ("/api/battles", {"json": {"mode": "battle"}}),
        (f"/api/battles/{battle_id}/messages", {"json": {"text": "x"}}),
        (f"/api/battles/{battle_id}/regenerate", {}),
        (f"/api/battles/{battle_id}/vote", {"json": {"vote": "a"}}),
        ("/api/images", {"files": {"image": ("a.png", b"x", "image/png")}}),
    ]
    other = arena.client()
    for path, kwargs in posts:
        missing = client.post(path, csrf=False, **kwargs)
        assert missing.status_code == 403, path
        assert missing.json()["error"]["code"] == "csrf_failed"
        wrong = client.post(path, csrf=False, headers={"X-CSRF-Token": "0" * 64}, **kwargs)
        assert wrong.status_code == 403, path
        # A valid token of another session does not work either (bound to the session).
        foreign = client.post(path, csrf=False, headers={"X-CSRF-Token": other.csrf}, **kwargs)
        assert foreign.status_code == 403, path
    # Malformed JSON without a token is still a CSRF failure: CSRF is checked first.
    bad = client.post(
        "/api/battles", csrf=False, content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 403
    # No cookies at all.
    stranger = ArenaClient(arena.url)
    assert (
        stranger.post("/api/battles", json={}, headers={"X-CSRF-Token": client.csrf}).status_code
        == 403
    )
    with arena.db.session() as s:
        assert s.scalars(select(Vote)).all() == []
    # The session cookie is HttpOnly and SameSite=Lax; the CSRF cookie is readable by JS.
    page = client.get("/")
    cookies = page.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("arena_session="))
    csrf_cookie = next(c for c in cookies if c.startswith("arena_csrf="))
    assert "httponly" in session_cookie.lower() and "samesite=lax" in session_cookie.lower()
    assert "httponly" not in csrf_cookie.lower() and "samesite=lax" in csrf_cookie.lower()
    for c in (client, other, stranger):
        c.close()


def test_generated_secret_is_kept_private_and_stable(tmp_path):
    import stat

    from arena.config import Settings
    from arena.web.app import resolve_secret

    settings = Settings(data_dir=tmp_path / "data")
    first = resolve_secret(settings)
    assert len(first) == 64 and resolve_secret(settings) == first
    mode = stat.S_IMODE((tmp_path / "data" / "secret_key").stat().st_mode)
    assert mode == 0o600
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["secret_key"]
    assert resolve_secret(Settings(data_dir=tmp_path, secret_key="given")) == b"given"
