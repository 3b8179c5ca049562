"""ARENA_PAIR_SAMPLING=active: the live arena draws the pairs the leaderboard is least sure
about, from the newest leaderboard artifacts, and draws weighted before any exist."""

from __future__ import annotations

from collections import Counter

from arena.leaderboard.artifacts import write_artifact_set
from arena.leaderboard.table import Leaderboard, ModelRow
from support.web_fakes import ScriptedProvider

UNLIMITED = {
    "requests_per_session": "1000/minute",
    "requests_per_ip": "1000/minute",
}
NAMES = ("alpha", "beta", "gamma", "delta")


def _board_where_delta_is_unmeasured() -> Leaderboard:
    """alpha, beta and gamma have met a thousand times each; delta never played."""
    known = ["alpha", "beta", "gamma"]
    rows = tuple(ModelRow(m, 1000.0, 990.0, 1010.0, 1, 2000) for m in known)
    counts = [[0 if i == j else 1000 for j in range(3)] for i in range(3)]
    covariance = [[25.0 if i == j else 0.0 for j in range(3)] for i in range(3)]
    return Leaderboard(
        "full",
        False,
        rows,
        uncertainty={"models": known, "covariance": covariance, "battle_counts": counts},
    )


def _draw_pairs(client, n: int) -> Counter:  # type: ignore[no-untyped-def]
    pairs: Counter = Counter()
    for _ in range(n):
        battle_id = client.new_battle()
        client.send(battle_id, "hi")
        models = client.vote(battle_id, "tie").json()["models"]
        pairs[frozenset((models["a"]["name"], models["b"]["name"]))] += 1
    return pairs


def test_active_sampling_seeks_out_the_unmeasured_model(arena_server, tmp_path):
    providers = [ScriptedProvider(n) for n in NAMES]
    arena = arena_server(
        providers,
        settings={
            **UNLIMITED,
            "votes_per_session": "1000/minute",
            "votes_per_ip": "1000/minute",
            "pair_sampling": "active",
        },
        leaderboard=False,  # no live recomputation: our hand-made board stays the newest
    )
    write_artifact_set(
        arena.settings.data_dir / "leaderboard", [_board_where_delta_is_unmeasured()],
        snapshot="handmade",
    )  # fmt: skip
    client = arena.client()
    pairs = _draw_pairs(client, 30)
    with_delta = sum(n for pair, n in pairs.items() if "delta" in pair)
    # Uniform draws would put delta in half the battles; active sampling nearly always.
    assert with_delta >= 25, pairs
    client.close()


def test_active_sampling_draws_weighted_before_any_leaderboard(arena_server):
    providers = [ScriptedProvider(n) for n in NAMES]
    arena = arena_server(
        providers,
        settings={
            **UNLIMITED,
            "votes_per_session": "1000/minute",
            "votes_per_ip": "1000/minute",
            "pair_sampling": "active",
            "leaderboard_refresh_s": 3600,
        },
    )
    client = arena.client()
    pairs = _draw_pairs(client, 24)
    assert len(pairs) >= 4  # spread over the pairs, not stuck on one
    client.close()
