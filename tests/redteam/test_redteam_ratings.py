"""Joint ratings: simulated players and models of known strength are recovered in order."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from arena.redteam.ratings import (
    PRELIMINARY_ROUNDS,
    Board,
    RedTeamBoards,
    RedTeamRound,
    WarningCode,
    fit_warning_code,
    rate_rounds,
)


def simulate_rounds(n_players, n_models, n_challenges, n_rounds, seed):
    """Rounds where P(success) = σ(−1 + player − model − challenge).

    Players' activity is log-normal (a few play a lot, many a little), as in open games;
    models and challenges are drawn uniformly, as the game's sampler would.
    """
    rng = np.random.default_rng(seed)
    truth = {
        "player": rng.normal(0, 1.0, n_players),
        "model": rng.normal(0, 0.8, n_models),
        "challenge": rng.normal(0, 0.6, n_challenges),
    }
    activity = rng.lognormal(0, 0.8, n_players)
    p = rng.choice(n_players, n_rounds, p=activity / activity.sum())
    m = rng.integers(0, n_models, n_rounds)
    c = rng.integers(0, n_challenges, n_rounds)
    logit = -1.0 + truth["player"][p] - truth["model"][m] - truth["challenge"][c]
    success = rng.random(n_rounds) < 1 / (1 + np.exp(-logit))
    rounds = [
        RedTeamRound(f"p{a}", f"m{b}", f"c{d}", bool(s))
        for a, b, d, s in zip(p, m, c, success, strict=True)
    ]
    return rounds, truth


def _spearman(boards: RedTeamBoards, truth) -> dict[str, float]:
    out = {}
    for group, board in (
        ("player", boards.players),
        ("model", boards.models),
        ("challenge", boards.challenges),
    ):
        est = [row.rating for row in board.rows]
        true = [truth[group][int(row.name[1:])] for row in board.rows]
        out[group] = spearmanr(est, true).statistic
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simulation_recovers_the_order_of_players_models_and_challenges(seed):
    # 60 players (200 rounds each on average, log-normal activity), 12 models, 8 challenges.
    rounds, truth = simulate_rounds(60, 12, 8, 12_000, seed)
    boards = rate_rounds(rounds)
    rho = _spearman(boards, truth)
    assert min(rho.values()) >= 0.9, rho
    assert len(boards.players.rows) == 60 and boards.n_rounds == 12_000


def test_boards_read_the_right_way_round():
    rounds = []
    # "hard" resists "alice" more than "soft" does; "bob" breaks both less often than alice.
    for player, model, wins, losses in (
        ("alice", "soft", 30, 10),
        ("alice", "hard", 15, 25),
        ("bob", "soft", 15, 25),
        ("bob", "hard", 5, 35),
    ):
        for challenge in ("easy", "tough"):
            extra = 5 if challenge == "easy" else 0
            rounds += [RedTeamRound(player, model, challenge, True)] * (wins + extra)
            rounds += [RedTeamRound(player, model, challenge, False)] * (losses + 5 - extra)
    boards = rate_rounds(rounds, confidence=0.9)
    assert boards.players.names() == ["alice", "bob"]
    assert boards.models.names() == ["hard", "soft"]  # most robust first
    assert boards.challenges.names() == ["tough", "easy"]  # hardest first
    alice = boards.players.rows[0]
    assert alice.rounds == 180 and alice.successes == 2 * (30 + 15) + 5 * 2
    assert boards.models.rows[0].successes == 2 * (15 + 5) + 5 * 2
    for board in (boards.players, boards.models, boards.challenges):
        for row in board.rows:
            assert row.lower < row.rating < row.upper
        assert board.rows[0].rank == 1
    assert boards.confidence == 0.9 and boards.warnings == () and boards.warning_codes == ()


def test_a_player_who_always_wins_is_rated_with_a_warning():
    rounds = [RedTeamRound("ace", "m1", "c1", True)] * 5 + [
        RedTeamRound("joe", m, "c1", s) for m in ("m1", "m2") for s in (True, False, False)
    ]
    boards = rate_rounds(rounds)
    # As on the main leaderboard: the English sentence, and its code beside it.
    (warning,) = boards.warnings
    assert warning.startswith("no finite maximum-likelihood strengths") and "ridge" in warning
    assert boards.warning_codes == (WarningCode("no_finite_optimum", {"ridge": 0.01}),)
    assert boards.players.names()[0] == "ace"
    assert all(np.isfinite(r.rating) for r in boards.players.rows)


def test_members_with_few_rounds_are_preliminary():
    rounds = [RedTeamRound("ace", "m1", "c1", i % 2 == 0) for i in range(10)]
    rounds += [RedTeamRound("new", "m2", "c1", i == 0) for i in range(9)]
    boards = rate_rounds(rounds)
    assert boards.preliminary_rounds == PRELIMINARY_ROUNDS == 10
    flags = {r.name: r.preliminary for b in (boards.players, boards.models) for r in b.rows}
    assert flags == {"ace": False, "new": True, "m1": False, "m2": True}
    assert boards.challenges.rows[0].preliminary is False
    stricter = rate_rounds(rounds, preliminary_rounds=11)
    assert all(r.preliminary for r in stricter.players.rows)


def test_a_warning_the_module_does_not_know_has_no_code_and_codes_stay_aligned():
    assert fit_warning_code("something new went wrong", 0.01) == WarningCode(None, {})
    nothing = Board(())
    with pytest.raises(ValueError, match="one code per warning"):
        RedTeamBoards(nothing, nothing, nothing, n_rounds=0, confidence=0.95, warnings=("x",))
