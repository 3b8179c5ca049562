"""The live arena refreshes the leaderboard as votes arrive: votes cast through the arena
API appear on /api/leaderboard without a restart or a manual command."""

from __future__ import annotations

from support.processes import PROCESS_DEADLINE_S, wait_until
from support.web_fakes import ScriptedProvider


def _leaderboard(client) -> dict:  # type: ignore[no-untyped-def]
    response = client.get("/api/leaderboard")
    return response.json() if response.status_code == 200 else {}


def test_votes_show_up_on_the_leaderboard(arena_server):
    arena = arena_server(
        [ScriptedProvider("alpha-model"), ScriptedProvider("beta-model")],
        settings={"leaderboard_refresh_s": 0.0, "leaderboard_rounds": 20},
    )
    client = arena.client()
    assert not _leaderboard(client).get("models")  # nothing voted yet

    revealed = []
    for _ in range(3):
        battle_id = client.new_battle()
        client.send(battle_id, "hello")
        vote = client.vote(battle_id, "a")
        assert vote.status_code == 200
        revealed.append(vote.json()["models"]["a"]["name"])

    # The board is refitted by a low-priority child process: slow on a busy machine.
    board: dict = {}

    def every_vote_counted() -> bool:
        nonlocal board
        board = _leaderboard(client)
        return sum(m.get("num_battles", 0) for m in board.get("models", [])) >= 2 * 3

    wait_until(every_vote_counted, timeout_s=2 * PROCESS_DEADLINE_S, what="the refitted board")
    models = {m["model"]: m for m in board.get("models", [])}
    assert set(models) == {"alpha-model", "beta-model"}, board
    assert sum(m["num_battles"] for m in models.values()) == 2 * 3
    # Every vote went to side A; with two models and three votes one of them won at least
    # twice, and it leads the board.
    leader = max(set(revealed), key=revealed.count)
    assert revealed.count(leader) >= 2
    assert models[leader]["rating"] > min(m["rating"] for m in models.values())
    client.close()
