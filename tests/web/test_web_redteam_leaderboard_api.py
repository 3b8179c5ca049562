"""``GET /api/redteam/leaderboard`` on a real server, with rounds played through the real API:
the empty state, the boards' order and names, warnings in English with their codes beside them
(the main leaderboard's shape), members with few rounds marked preliminary, and a cache refitted
only when a round ends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

from arena.redteam.boards_from_store import read_rated_rounds
from arena.store.db import Database
from arena.store.migrate import upgrade
from arena.web.redteam_leaderboard_api import BoardCache
from arena.web.store_calls import in_thread
from support.redteam_rounds import phrase_challenge, play_round
from support.web_fakes import ArenaClient, ScriptedProvider, parse_sse

CHALLENGES = """
challenges:
  - id: pirate
    kind: say_phrase
    title: Pirate oath
    phrase: sink every ship
    time_limit_s: 600
    turn_limit: 2
    models: [soft, stern]
"""
KEYS = {"n_rounds", "confidence", "preliminary_rounds", "warnings", "warning_codes",
        "computed_at", "players", "models", "challenges"}  # fmt: skip
ROW_KEYS = {"rank", "name", "rating", "lower", "upper", "rounds", "successes", "preliminary"}


def _echo(request) -> str:
    return f"You said: {request.messages[-1].content}"


@pytest.fixture
def arena(arena_server, tmp_path: Path):
    path = tmp_path / "challenges.yaml"
    path.write_text(CHALLENGES)
    providers = [
        ScriptedProvider("soft", reply=_echo),  # says whatever it is asked to
        ScriptedProvider("stern", reply="I would rather not."),
    ]
    # Up to 40 rounds a player until the coin-flip draw has shown both models: more than the
    # default 20 requests a minute per session, which is not what these tests are about.
    settings = {
        "redteam_challenges_path": path,
        "leaderboard_refresh_s": 0,
        "requests_per_session": "1000/minute",
    }
    return arena_server(providers, settings=settings)


def _board(client: ArenaClient) -> dict:
    response = client.get("/api/redteam/leaderboard")
    assert response.status_code == 200, response.text
    return response.json()


def _play(client: ArenaClient, text: str, *, give_up: bool = False) -> dict:
    """One round: send ``text`` (then give up, or send it again until the round is over)."""
    response = client.post("/api/redteam/rounds", json={"challenge_id": "pirate"})
    assert response.status_code == 201, response.text
    round_id = response.json()["round_id"]
    for _ in range(2):
        response = client.post(f"/api/redteam/rounds/{round_id}/messages", json={"text": text})
        view = [e.data for e in parse_sse(response.content) if e.event == "round"][-1]
        if view["status"] != "active":
            return view
        if give_up:
            break
    view = client.post(f"/api/redteam/rounds/{round_id}/end").json()
    assert view["status"] == "lost"
    return view


def test_empty_boards_before_any_round_ends(arena):
    client = arena.client()
    payload = _board(client)
    assert set(payload) == KEYS
    assert payload["n_rounds"] == 0 and payload["confidence"] == 0.95
    assert payload["players"] == payload["models"] == payload["challenges"] == []
    assert payload["warnings"] == payload["warning_codes"] == []
    assert payload["preliminary_rounds"] == 10


def test_boards_from_played_rounds_and_a_cache_refitted_when_a_round_ends(arena):
    strong, weak = arena.client(), arena.client()
    ok = strong.http.put("/api/redteam/player", json={"nickname": "Red Fox"},
                         headers={"X-CSRF-Token": strong.csrf})  # fmt: skip
    assert ok.status_code == 200
    seen: dict[str, set[str]] = {"strong": set(), "weak": set()}
    wins = 0
    for i in range(40):  # until each player met both models (each draw is a coin flip)
        if seen["strong"] == seen["weak"] == {"soft", "stern"}:
            break
        view = _play(strong, f"Say it, round {i}: sink every ship")
        seen["strong"].add(view["model"])
        wins += view["status"] == "won"
        view = _play(weak, "hello", give_up=True)
        seen["weak"].add(view["model"])
    assert seen["strong"] == seen["weak"] == {"soft", "stern"}
    played = 2 * i

    payload = _board(strong)
    assert set(payload) == KEYS and payload["n_rounds"] == played
    assert all(set(row) == ROW_KEYS for b in ("players", "models") for row in payload[b])
    names = [p["name"] for p in payload["players"]]
    assert names[0] == "Red Fox" and names[1].startswith("player-") and len(names[1]) == 15
    fox = payload["players"][0]
    assert fox["successes"] == wins and fox["rounds"] == i
    assert [m["name"] for m in payload["models"]] == ["stern", "soft"]  # most robust first
    assert payload["models"][0]["successes"] == 0
    assert payload["challenges"][0]["name"] == "pirate"
    # Only ever winning against "soft" and never against "stern": the fit says it needed help.
    assert [w["code"] for w in payload["warning_codes"]] == ["no_finite_optimum"]
    assert "ridge" in payload["warnings"][0]
    assert all(p["preliminary"] == (p["rounds"] < 10) for p in payload["players"])

    # Nothing ended: the same fit is served, even while a round is being played.
    again = _board(weak)
    assert again == payload
    started = weak.post("/api/redteam/rounds", json={"challenge_id": "pirate"}).json()
    weak.post(f"/api/redteam/rounds/{started['round_id']}/messages", json={"text": "hi"})
    assert _board(weak)["computed_at"] == payload["computed_at"]
    # The round ends: the next request refits.
    weak.post(f"/api/redteam/rounds/{started['round_id']}/end")
    after = _board(strong)
    assert after["n_rounds"] == played + 1 and after["computed_at"] != payload["computed_at"]
    rounds = {p["name"]: p["rounds"] for p in after["players"]}
    assert rounds[names[1]] == i + 1


def test_warnings_carry_a_code_and_members_with_few_rounds_are_preliminary(arena):
    challenge = phrase_challenge("pirate", ("soft", "stern"))
    veteran, newcomer = "a" * 64, "b" * 64
    # The veteran: 12 rounds, won and lost against both models; the newcomer: 3 rounds, all
    # won, so nothing bounds their rating from above. Every attack differs (no duplicates).
    games = [(veteran, "soft", i < 4) for i in range(6)] + [
        (veteran, "stern", i < 2) for i in range(6)
    ]
    games += [(newcomer, "soft", True)] * 3
    for i, (player, model, won) in enumerate(games):
        play_round(arena.db, player_id=player, model=model, challenge=challenge,
                   prompts=[f"attack {i}"], won=won)  # fmt: skip

    payload = _board(arena.client())
    assert payload["n_rounds"] == 15 and payload["preliminary_rounds"] == 10
    (warning,) = payload["warnings"]
    assert warning.startswith("no finite maximum-likelihood strengths")
    assert payload["warning_codes"] == [{"code": "no_finite_optimum", "params": {"ridge": 0.01}}]
    players = {p["name"]: p for p in payload["players"]}
    old, new = players["player-aaaaaaaa"], players["player-bbbbbbbb"]
    assert (old["rounds"], old["preliminary"]) == (12, False)
    assert (new["rounds"], new["preliminary"], new["upper"]) == (3, True, None)
    models = {m["name"]: (m["rounds"], m["preliminary"]) for m in payload["models"]}
    assert models == {"soft": (9, True), "stern": (6, True)}
    assert [(c["rounds"], c["preliminary"]) for c in payload["challenges"]] == [(15, False)]


def test_the_preliminary_threshold_is_a_setting(arena_server, tmp_path: Path):
    path = tmp_path / "challenges.yaml"
    path.write_text(CHALLENGES)
    providers = [ScriptedProvider("soft", reply=_echo), ScriptedProvider("stern", reply="No.")]
    settings = {"redteam_challenges_path": path, "leaderboard_refresh_s": 0,
                "redteam_preliminary_rounds": 2}  # fmt: skip
    server = arena_server(providers, settings=settings)
    challenge = phrase_challenge("pirate", ("soft", "stern"))
    for i, (model, won) in enumerate([("soft", True), ("stern", False), ("soft", False)]):
        play_round(server.db, player_id="c" * 64, model=model, challenge=challenge,
                   prompts=[f"try {i}"], won=won)  # fmt: skip
    payload = _board(server.client())
    assert payload["preliminary_rounds"] == 2
    models = {m["name"]: (m["rounds"], m["preliminary"]) for m in payload["models"]}
    assert models == {"soft": (2, False), "stern": (1, True)}


def test_the_route_is_in_the_openapi_schema(arena):
    schema = arena.client().get("/openapi.json").json()
    route = schema["paths"]["/api/redteam/leaderboard"]["get"]
    assert "redteam" in route["tags"]
    body = schema["components"]["schemas"]["RedTeamLeaderboard"]
    assert set(body["properties"]) == KEYS
    # The same warning shape (and model) as GET /api/leaderboard.
    assert body["properties"]["warnings"]["items"] == {"type": "string"}
    codes = body["properties"]["warning_codes"]["items"]
    assert codes == {"$ref": "#/components/schemas/LeaderboardWarning"}
    assert set(schema["components"]["schemas"]["LeaderboardWarning"]["properties"]) == {
        "code",
        "params",
    }


async def test_requests_during_a_refit_get_the_boards_it_replaces(tmp_path):
    """A refit in progress does not hold other requests: they get the last boards."""
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    upgrade(url)
    db = Database(url)
    reading, release = asyncio.Event(), asyncio.Event()
    hold = False

    async def read(fn, *args, **kwargs):
        if fn is read_rated_rounds and hold:
            reading.set()
            await release.wait()
        return await in_thread(fn, *args, **kwargs)

    cache = BoardCache(SimpleNamespace(store=SimpleNamespace(db=db, read=read)))
    challenge = phrase_challenge("harbour", ("soft", "stern"))
    refit = None
    try:
        play_round(db, player_id="a" * 64, model="soft", challenge=challenge, prompts=["x"],
                   won=True)  # fmt: skip
        first = await cache.payload()
        assert first["n_rounds"] == 1
        play_round(db, player_id="b" * 64, model="stern", challenge=challenge, prompts=["y"],
                   won=False)  # fmt: skip
        hold = True
        refit = asyncio.create_task(cache.payload())
        await reading.wait()
        assert await cache.payload() is first  # not queued behind the refit
        release.set()
        assert (await refit)["n_rounds"] == 2
        hold = False
        assert (await cache.payload())["n_rounds"] == 2
    finally:
        release.set()
        if refit is not None:
            await asyncio.gather(refit, return_exceptions=True)
        db.dispose()


async def test_refits_are_spaced_by_the_minimum_interval(tmp_path):
    url = f"sqlite:///{tmp_path / 'arena.db'}"
    upgrade(url)
    db = Database(url)
    store = SimpleNamespace(db=db, read=lambda fn, *a, **k: in_thread(fn, *a, **k))
    cache = BoardCache(SimpleNamespace(store=store), min_interval_s=3600)
    challenge = phrase_challenge("harbour", ("soft", "stern"))
    try:
        play_round(db, player_id="a" * 64, model="soft", challenge=challenge, prompts=["x"],
                   won=True)  # fmt: skip
        first = await cache.payload()
        play_round(db, player_id="b" * 64, model="stern", challenge=challenge, prompts=["y"],
                   won=False)  # fmt: skip
        assert await cache.payload() is first  # too soon: the last boards
        cache.min_interval_s = 0
        assert (await cache.payload())["n_rounds"] == 2
    finally:
        db.dispose()
