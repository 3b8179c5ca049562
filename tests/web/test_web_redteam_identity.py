"""The red-team game attacked as a hostile player would, on a real server: learning the drawn
model of a round before it ends, and reaching another player's round.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from arena.store.redteam_rounds import iter_ended_rounds
from arena.web.streaming import StreamLimits
from support.processes import wait_until
from support.redteam_game import (
    attack,
    blank_volatile,
    echo,
    put_nickname,
    start_round,
)
from support.web_fakes import ArenaClient, ScriptedProvider

MODEL_NAMES = ("m-one", "m-two")


@pytest.fixture
def game(redteam_game_unlimited):
    return redteam_game_unlimited


def _header_names(response) -> list[str]:
    return sorted(k for k in response.headers if k not in ("date", "server-timing"))


def _mentions_a_model(text: str) -> bool:
    return any(name in text for name in MODEL_NAMES)


# ---------------------------------------------------------------- 1. the drawn model stays hidden


def _failure_trace(client: ArenaClient) -> tuple[str, list]:
    view = start_round(client)
    response, events = attack(client, view["round_id"], "tell me about boats")
    state = client.get(f"/api/redteam/rounds/{view['round_id']}")
    trace = [
        response.status_code,
        _header_names(response),
        blank_volatile(view),
        [(e.event, blank_volatile(e.data)) for e in events],
        state.status_code,
        blank_volatile(state.json()),
    ]
    assert not _mentions_a_model(response.text + state.text)
    model = client.post(f"/api/redteam/rounds/{view['round_id']}/end").json()["model"]
    return model, trace


def test_a_timeout_and_a_hang_read_exactly_alike(game):
    """One model times out upstream, the other hangs until the arena's idle limit: the
    player gets the same events, headers and round view either way."""
    providers = [
        ScriptedProvider("m-one", reply="Ahoy there sailor", fail="timeout"),
        ScriptedProvider("m-two", reply="Ahoy there sailor", fail="hang"),
    ]
    limits = StreamLimits(first_token_timeout_s=2.0, idle_timeout_s=0.5, total_timeout_s=5.0)
    arena = game(providers, stream_limits=limits)
    client = arena.client()
    seen: dict[str, list] = {}
    while len(seen) < 2:
        model, trace = _failure_trace(client)
        seen.setdefault(model, trace)
    first, second = seen.values()
    assert first == second
    assert [name for name, _ in first[3]] == ["delta", "error"]


def test_failing_before_and_during_the_answer_read_alike_apart_from_the_text(game):
    providers = [
        ScriptedProvider("m-one", reply="one two three four", fail="before"),
        ScriptedProvider("m-two", reply="one two three four", fail="during"),
    ]
    arena = game(providers)
    client = arena.client()
    seen: dict[str, list] = {}
    while len(seen) < 2:
        model, trace = _failure_trace(client)
        # The streamed words are the model's own answer; everything else must match.
        trace[3] = [item for item in trace[3] if item[0] != "delta"]
        seen.setdefault(model, trace)
    first, second = seen.values()
    assert first == second


def test_an_active_round_shows_nowhere_else(game):
    """Leaderboard, challenge list, pages and the export ignore a round still played."""
    arena = game()
    client = arena.client()
    board_before = client.get("/api/redteam/leaderboard").json()
    challenges_before = client.get("/api/redteam/challenges").content
    view = start_round(client)
    attack(client, view["round_id"], "hello")
    board = client.get("/api/redteam/leaderboard").json()
    assert board["n_rounds"] == 0 and board["players"] == board["models"] == []
    assert {k: v for k, v in board.items() if k != "computed_at"} == {
        k: v for k, v in board_before.items() if k != "computed_at"
    }
    assert client.get("/api/redteam/challenges").content == challenges_before
    for page in ("/redteam", "/redteam/leaderboard", "/api/history", "/history"):
        response = client.get(page)
        assert response.status_code == 200 and not _mentions_a_model(response.text)
    assert [r.id for r in iter_ended_rounds(arena.db, include_excluded=True)] == []
    # Once ended, the round is rated and exported.
    client.post(f"/api/redteam/rounds/{view['round_id']}/end")
    assert [r.id for r in iter_ended_rounds(arena.db)] == [view["round_id"]]
    wait_until(
        lambda: client.get("/api/redteam/leaderboard").json()["n_rounds"] == 1,
        what="the boards to count the ended round",
    )


def test_an_unhealthy_model_changes_no_response_of_the_game(game):
    """With one model in outage, rounds draw the other; the challenge list and round views
    stay byte-for-byte what they were (the outage itself is public through /api/models)."""
    providers = [
        ScriptedProvider("m-one", reply=echo),
        ScriptedProvider("m-two", reply=echo, healthy=False),
    ]
    arena = game(providers, settings={"health_interval_s": 0.2})
    client = arena.client()
    listed = client.get("/api/redteam/challenges").content
    wait_until(
        lambda: "m-two" not in {m["name"] for m in client.get("/api/models").json()["models"]},
        what="the probes to put m-two in outage",
    )
    assert client.get("/api/redteam/challenges").content == listed
    drawn = set()
    for _ in range(6):
        view = start_round(client)
        assert view["model"] is None and not _mentions_a_model(json.dumps(view))
        drawn.add(client.post(f"/api/redteam/rounds/{view['round_id']}/end").json()["model"])
    assert drawn == {"m-one"}


def test_no_model_available_reads_the_same_for_every_challenge(game):
    providers = [
        ScriptedProvider("m-one", healthy=False),
        ScriptedProvider("m-two", healthy=False),
    ]
    arena = game(providers, settings={"health_interval_s": 0.2})
    client = arena.client()

    def refused() -> bool:
        return (
            client.post("/api/redteam/rounds", json={"challenge_id": "pirate"}).status_code == 503
        )

    wait_until(refused, what="both models to be in outage")
    answers = [
        client.post("/api/redteam/rounds", json={"challenge_id": c}) for c in ("pirate", "vault")
    ]
    assert [a.status_code for a in answers] == [503, 503]
    assert answers[0].content == answers[1].content
    assert answers[0].json()["error"]["code"] == "no_model_available"
    assert not _mentions_a_model(answers[0].text)


# ---------------------------------------------------------------- 2. access control


def test_a_stranger_cannot_tell_a_real_round_from_a_made_up_id(game):
    arena = game()
    owner, stranger = arena.client(), arena.client()
    view = start_round(owner)
    real, made_up = view["round_id"], "r" + view["round_id"][1:][::-1]
    for path in ("", "/end"):
        method = stranger.get if not path else stranger.post
        a = method(f"/api/redteam/rounds/{real}{path}")
        b = method(f"/api/redteam/rounds/{made_up}{path}")
        assert a.status_code == b.status_code == 404
        assert a.content == b.content
    a, _ = attack(stranger, real, "sink every ship")
    b, _ = attack(stranger, made_up, "sink every ship")
    assert a.status_code == b.status_code == 404 and a.content == b.content
    # Without any session cookie, too.
    bare = httpx.get(f"{arena.url}/api/redteam/rounds/{real}")
    assert bare.status_code == 404
    assert owner.get(f"/api/redteam/rounds/{real}").json()["status"] == "active"
    assert arena.providers["m-one"].requests == arena.providers["m-two"].requests == []


def test_missing_or_forged_csrf_changes_nothing(game):
    arena = game()
    client, other = arena.client(), arena.client()
    view = start_round(client)
    url = f"/api/redteam/rounds/{view['round_id']}"
    for token in (None, "forged", other.csrf):
        headers = {} if token is None else {"X-CSRF-Token": token}
        sent = client.post(f"{url}/messages", json={"text": "hi"}, csrf=False, headers=headers)
        ended = client.post(f"{url}/end", csrf=False, headers=headers)
        started = client.post(
            "/api/redteam/rounds", json={"challenge_id": "pirate"}, csrf=False, headers=headers
        )
        named = put_nickname(client, "Sneaky One", csrf=token or "")
        assert [r.status_code for r in (sent, ended, started, named)] == [403] * 4
    state = client.get(url).json()
    assert state["status"] == "active" and state["turns_used"] == 0
    assert client.get("/api/redteam/player").json() == {"nickname": None}


def test_round_ids_are_long_random_tokens(game):
    arena = game()
    client = arena.client()
    ids = {start_round(client)["round_id"] for _ in range(20)}
    assert len(ids) == 20
    assert all(len(i) >= 20 and re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)
