"""Players, models and challenges rated on one scale by the grouped Bradley–Terry fit.

A round is a battle of a player (side A) against a model plus a challenge (side B); a
successful attack is the player's win. So a higher player rating is a stronger attacker, a
higher model rating a more robust model, a higher challenge rating a harder challenge. Only
differences within a board are meaningful (the fit centres each group).

Warnings are English sentences, as in the main leaderboard; ``warning_codes`` beside them (same
order) gives each a stable code with parameters (``WarningCode``), so a page can word them in
its reader's language. A member with fewer than ``PRELIMINARY_ROUNDS``
rated rounds is marked preliminary: its interval is wide and its place may still move a lot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from arena.ratings import GroupRatings, fit_grouped_bradley_terry, rank_upper_bound

PRELIMINARY_ROUNDS = 10
"""A member with fewer rated rounds than this is marked preliminary on every board. Ten
rounds of one player give an interval several hundred points wide: enough to place them
roughly, not to trust their rank."""

# The grouped fit's one warning, recognised by how its sentence starts (it has no code).
_NO_FINITE_OPTIMUM = "no finite maximum-likelihood strengths"


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
    preliminary: bool = False  # fewer rated rounds than the boards' ``preliminary_rounds``


@dataclass(frozen=True)
class Board:
    rows: tuple[BoardRow, ...]  # best first: strongest player, most robust model, hardest challenge

    def names(self) -> list[str]:
        return [r.name for r in self.rows]


@dataclass(frozen=True)
class WarningCode:
    """A warning's stable ``code`` (None for a sentence this module does not know) and the
    ``params`` it states: the JSON's ``warning_codes`` entry, as in the main leaderboard."""

    code: str | None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RedTeamBoards:
    players: Board
    models: Board  # robustness
    challenges: Board  # difficulty
    n_rounds: int
    confidence: float
    warnings: tuple[str, ...] = ()  # English sentences
    warning_codes: tuple[WarningCode, ...] = ()  # one per warning, in the same order
    preliminary_rounds: int = PRELIMINARY_ROUNDS

    def __post_init__(self) -> None:
        # A page reads warning_codes[i] to word warnings[i]: the two must stay aligned.
        if len(self.warning_codes) != len(self.warnings):
            raise ValueError("warning_codes must give one code per warning, in the same order")


def fit_warning_code(message: str, ridge: float) -> WarningCode:
    """The code of one of the grouped fit's English warnings (``ridge``: the one it used)."""
    if message.startswith(_NO_FINITE_OPTIMUM):
        return WarningCode("no_finite_optimum", {"ridge": ridge})
    return WarningCode(None)


def _board(group: GroupRatings, counts: Counter, wins: Counter, preliminary_rounds: int) -> Board:
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
            preliminary=counts[group.labels[i]] < preliminary_rounds,
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
    preliminary_rounds: int = PRELIMINARY_ROUNDS,
) -> RedTeamBoards:
    """Fit the three boards with sandwich intervals.

    A player who only ever won (or only lost) has no finite maximum-likelihood rating; the
    fit then adds a small ridge and says so in ``warnings``. ``ridge`` > 0 asks for one
    from the start (many players with a handful of rounds each). Members with fewer than
    ``preliminary_rounds`` rounds are marked preliminary.
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
        boards[group] = _board(fit.groups[group], counts, wins, preliminary_rounds)
    return RedTeamBoards(
        players=boards["player"],
        models=boards["model"],
        challenges=boards["challenge"],
        n_rounds=fit.n_battles,
        confidence=fit.confidence,
        warnings=tuple(fit.warnings),
        warning_codes=tuple(fit_warning_code(w, fit.ridge) for w in fit.warnings),
        preliminary_rounds=preliminary_rounds,
    )
