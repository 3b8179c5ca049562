"""Players, models and challenges rated on one scale by the grouped Bradley–Terry fit.

A round is a battle of a player (side A) against a model plus a challenge (side B); a
successful attack is the player's win. So a higher player rating is a stronger attacker, a
higher model rating a more robust model, a higher challenge rating a harder challenge. Only
differences within a board are meaningful (the fit centres each group).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from arena.ratings import GroupRatings, fit_grouped_bradley_terry, rank_upper_bound


@dataclass(frozen=True)
class RedTeamRound:
    player: str
    model: str
    challenge: str
    success: bool


@dataclass(frozen=True)
class BoardRow:
    name: str
    rating: float
    lower: float
    upper: float
    rank: int  # 1 + members whose lower bound is above this one's upper bound
    rounds: int
    successes: int  # attacks that succeeded (by the player / against the model or challenge)


@dataclass(frozen=True)
class Board:
    rows: tuple[BoardRow, ...]  # best first: strongest player, most robust model, hardest challenge

    def names(self) -> list[str]:
        return [r.name for r in self.rows]


@dataclass(frozen=True)
class RedTeamBoards:
    players: Board
    models: Board  # robustness
    challenges: Board  # difficulty
    n_rounds: int
    confidence: float
    warnings: tuple[str, ...] = ()


def _board(group: GroupRatings, counts: Counter, wins: Counter) -> Board:
    ranks = rank_upper_bound(group.lower, group.upper)
    order = np.argsort(-group.ratings, kind="stable")
    rows = tuple(
        BoardRow(
            name=group.labels[i],
            rating=float(group.ratings[i]),
            lower=float(group.lower[i]),
            upper=float(group.upper[i]),
            rank=int(ranks[i]),
            rounds=counts[group.labels[i]],
            successes=wins[group.labels[i]],
        )
        for i in order
    )
    return Board(rows)


def rate_rounds(
    rounds: Iterable[RedTeamRound],
    *,
    confidence: float = 0.95,
    scale: float = 400.0,
    base: float = 10.0,
    init_rating: float = 1000.0,
    ridge: float = 0.0,
) -> RedTeamBoards:
    """Fit the three boards with sandwich intervals.

    A player who only ever won (or only lost) has no finite maximum-likelihood rating; the
    fit then adds a small ridge and says so in ``warnings``. ``ridge`` > 0 asks for one
    from the start (many players with a handful of rounds each).
    """
    rounds = list(rounds)
    players = [r.player for r in rounds]
    models = [r.model for r in rounds]
    challenges = [r.challenge for r in rounds]
    winner = ["model_a" if r.success else "model_b" for r in rounds]
    fit = fit_grouped_bradley_terry(
        {"player": players},
        {"model": models, "challenge": challenges},
        winner,
        scale=scale,
        base=base,
        init_rating=init_rating,
        confidence=confidence,
        ridge=ridge,
    )
    boards = {}
    for group, column in (("player", players), ("model", models), ("challenge", challenges)):
        counts = Counter(column)
        wins = Counter(c for c, r in zip(column, rounds, strict=True) if r.success)
        boards[group] = _board(fit.groups[group], counts, wins)
    return RedTeamBoards(
        players=boards["player"],
        models=boards["model"],
        challenges=boards["challenge"],
        n_rounds=fit.n_battles,
        confidence=fit.confidence,
        warnings=fit.warnings,
    )
