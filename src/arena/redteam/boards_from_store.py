"""The red-team boards as the store has them: ended rounds fitted, players named for display.

The fit keys players by their stored id (a keyed hash of their session), so two players never
merge on the board, and only then gives each row its public label: the player's nickname, or
``player-`` and the first eight hex digits of the id for a player without one. A duplicate
win (the same attack on the same challenge and model) counts once unless asked otherwise.

``boards_payload`` is the JSON layout that ``GET /api/redteam/leaderboard``,
``arena redteam leaderboard --format json`` and its ``boards.json`` share. As in the main
leaderboard (``GET /api/leaderboard``), ``warnings`` are English sentences and ``warning_codes``
gives each one's code and parameters in the same order, so that the page words them in its own
language; each row says whether its member is preliminary (too few rounds to trust its rank).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from arena.redteam.ratings import (
    PRELIMINARY_ROUNDS,
    Board,
    RedTeamBoards,
    RedTeamRound,
    WarningCode,
    rate_rounds,
)
from arena.store.db import Database
from arena.store.redteam_players import nicknames
from arena.store.redteam_rounds import RatedRound, rated_rounds

BOARD_NAMES = ("players", "models", "challenges")
ROW_FIELDS = ("rank", "name", "rating", "lower", "upper", "rounds", "successes", "preliminary")
# Nickname look-ups go in chunks: SQLite caps the parameters of one statement.
_LOOKUP_CHUNK = 500


@dataclass(frozen=True)
class StoreBoards:
    """Fitted boards (players already labelled) and what they were fitted from."""

    boards: RedTeamBoards
    computed_at: datetime
    include_duplicates: bool
    successes: int  # successful attacks among the rated rounds


def player_label(player_id: str, nickname: str | None) -> str:
    return nickname or f"player-{player_id[:8]}"


def empty_boards(confidence: float, preliminary_rounds: int = PRELIMINARY_ROUNDS) -> RedTeamBoards:
    nothing = Board(())
    return RedTeamBoards(
        nothing,
        nothing,
        nothing,
        n_rounds=0,
        confidence=confidence,
        preliminary_rounds=preliminary_rounds,
    )


def player_labels(db: Database, player_ids: Iterable[str]) -> dict[str, str]:
    """Public label of each player id: nickname, else ``player-`` + 8 hex digits."""
    ids = sorted(set(player_ids))
    found: dict[str, str] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        found.update(nicknames(db, ids[start : start + _LOOKUP_CHUNK]))
    return {pid: player_label(pid, found.get(pid)) for pid in ids}


def fit_rated_rounds(
    rounds: Sequence[RatedRound],
    labels: Mapping[str, str],
    *,
    confidence: float,
    preliminary_rounds: int = PRELIMINARY_ROUNDS,
) -> RedTeamBoards:
    """The pure part: fit stored rounds and name the player rows."""
    if not rounds:
        return empty_boards(confidence, preliminary_rounds)
    boards = rate_rounds(
        (RedTeamRound(r.player_id, r.model, r.challenge_id, r.success) for r in rounds),
        confidence=confidence,
        preliminary_rounds=preliminary_rounds,
    )
    rows = boards.players.rows
    named = tuple(replace(r, name=labels.get(r.name) or player_label(r.name, None)) for r in rows)
    return replace(boards, players=Board(named))


@dataclass(frozen=True)
class StoredRounds:
    """What the boards are fitted from, as read from the store."""

    rounds: list[RatedRound]
    labels: dict[str, str]
    include_duplicates: bool


def read_rated_rounds(db: Database, *, include_duplicates: bool = False) -> StoredRounds:
    """The ended rounds to rate and their players' labels (the store part only)."""
    rounds = rated_rounds(db, include_duplicates=include_duplicates)
    labels = player_labels(db, (r.player_id for r in rounds))
    return StoredRounds(rounds, labels, include_duplicates)


def fit_stored_rounds(
    stored: StoredRounds,
    *,
    confidence: float = 0.95,
    preliminary_rounds: int = PRELIMINARY_ROUNDS,
) -> StoreBoards:
    """The CPU part: fit what ``read_rated_rounds`` read."""
    boards = fit_rated_rounds(
        stored.rounds,
        stored.labels,
        confidence=confidence,
        preliminary_rounds=preliminary_rounds,
    )
    return StoreBoards(
        boards=boards,
        computed_at=datetime.now(UTC),
        include_duplicates=stored.include_duplicates,
        successes=sum(r.success for r in stored.rounds),
    )


def load_store_boards(
    db: Database,
    *,
    confidence: float = 0.95,
    include_duplicates: bool = False,
    preliminary_rounds: int = PRELIMINARY_ROUNDS,
) -> StoreBoards:
    """Read every ended round and fit the three boards (empty boards when none ended)."""
    stored = read_rated_rounds(db, include_duplicates=include_duplicates)
    return fit_stored_rounds(stored, confidence=confidence, preliminary_rounds=preliminary_rounds)


def _number(value: float) -> float | None:
    # JSON has no NaN or infinity; an interval the fit could not bound reads as null.
    return round(value, 2) if math.isfinite(value) else None


def board_rows(board: Board) -> list[dict[str, Any]]:
    return [
        {
            "rank": row.rank,
            "name": row.name,
            "rating": _number(row.rating),
            "lower": _number(row.lower),
            "upper": _number(row.upper),
            "rounds": row.rounds,
            "successes": row.successes,
            "preliminary": row.preliminary,
        }
        for row in board.rows
    ]


def warning_code_payload(coded: WarningCode) -> dict[str, Any]:
    return {"code": coded.code, "params": dict(coded.params)}


def boards_payload(fitted: StoreBoards) -> dict[str, Any]:
    """``{"n_rounds", "confidence", "preliminary_rounds", "warnings", "warning_codes",
    "computed_at", "players", "models", "challenges"}``: ``warnings`` English sentences,
    ``warning_codes`` one ``{"code", "params"}`` per warning in the same order (``code`` null
    when unknown), each board a list of ``{"rank", "name", "rating", "lower", "upper",
    "rounds", "successes", "preliminary"}``, best first."""
    boards = fitted.boards
    return {
        "n_rounds": boards.n_rounds,
        "confidence": boards.confidence,
        "preliminary_rounds": boards.preliminary_rounds,
        "warnings": list(boards.warnings),
        "warning_codes": [warning_code_payload(c) for c in boards.warning_codes],
        "computed_at": fitted.computed_at.astimezone(UTC).isoformat(),
        "players": board_rows(boards.players),
        "models": board_rows(boards.models),
        "challenges": board_rows(boards.challenges),
    }
