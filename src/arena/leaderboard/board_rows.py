"""A fit's arrays → leaderboard rows: who is ranked, in which part, with which notes.

Ranking rules (see docs/leaderboard.md): models with fewer than ``min_battles`` battles are
preliminary, listed after the ranked models and never ranked above them; a disconnected
comparison graph is ranked part by part (ratings in different parts are not comparable);
each row says what the battles cannot support (an unbounded side, an interval that had to
be model-based). Optional columns: online Elo with bootstrap intervals, votes needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from arena.leaderboard.table import ModelRow

if TYPE_CHECKING:
    import polars as pl

    from arena.leaderboard.compute import RatingSettings
    from arena.ratings import Battles


@dataclass(frozen=True)
class AssembledRows:
    rows: tuple[ModelRow, ...]
    parts: int
    warnings: tuple[str, ...]


def win_counts(frame: pl.DataFrame) -> dict[str, tuple[int, int, int, int]]:
    """Model → (battles, wins, losses, ties), counted from both sides."""
    import polars as pl

    sides = []
    for me, other_win, my_win in (
        ("model_a", "model_b", "model_a"),
        ("model_b", "model_a", "model_b"),
    ):
        sides.append(
            frame.select(
                pl.col(me).alias("model"),
                (pl.col("winner") == my_win).cast(pl.Int64).alias("win"),
                (pl.col("winner") == other_win).cast(pl.Int64).alias("loss"),
                pl.col("winner").str.starts_with("tie").cast(pl.Int64).alias("tie"),
            )
        )
    totals = (
        pl.concat(sides)
        .group_by("model")
        .agg(pl.len().alias("n"), pl.sum("win"), pl.sum("loss"), pl.sum("tie"))
    )
    return {
        row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in totals.iter_rows()
    }


def row_notes(battles: Battles) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """Per model: its notes, and its part of the comparison graph (1 = largest)."""
    from arena.ratings.battles import aggregate
    from arena.ratings.evidence import ordered_parts, separation, without_decisive_battle

    table = aggregate(battles)
    sep = separation(table)
    ties_only = without_decisive_battle(table)
    notes = []
    for m in range(battles.n_models):
        mine = []
        if sep.above[m]:
            mine.append("never_lost")
        if sep.below[m]:
            mine.append("never_won")
        if ties_only[m]:
            mine.append("all_ties")
        notes.append(tuple(mine))
    return notes, ordered_parts(battles.n_models, table.pair_i, table.pair_j)


def ranks_within_parts(
    lower: np.ndarray, upper: np.ndarray, parts: np.ndarray, ranked: np.ndarray
) -> list[int | None]:
    """Rank (UB) among the ranked models of the same part; None for the others."""
    from arena.ratings import rank_upper_bound

    out: list[int | None] = [None] * len(lower)
    for part in np.unique(parts):
        sel = np.flatnonzero((parts == part) & ranked)
        if len(sel):
            for m, k in zip(sel, rank_upper_bound(lower[sel], upper[sel]), strict=True):
                out[m] = int(k)
    return out


def extra_battles(width: np.ndarray, battles: np.ndarray, target: float) -> list[int | None]:
    """Votes needed for each finite interval to shrink to ``target`` (None when unbounded)."""
    out: list[int | None] = []
    for w, n in zip(width, battles, strict=True):
        if not math.isfinite(w) or n == 0:
            out.append(None)
        else:
            out.append(math.ceil(max(n * (w / target) ** 2 - n, 0.0)))
    return out


def assemble_rows(
    frame: pl.DataFrame,
    battles: Battles,
    result: Any,
    settings: RatingSettings,
    *,
    with_elo: bool = True,
) -> AssembledRows:
    """Rows sorted by part, ranked before preliminary, then rank and rating. ``with_elo``
    (when the settings ask for Elo) is off for style-controlled boards: Elo has no style
    control, and its column belongs to the plain board."""
    models = [str(m) for m in result.models]
    values = np.asarray(result.ratings, dtype=float)
    lower = np.asarray(result.lower, dtype=float)
    upper = np.asarray(result.upper, dtype=float)
    counts = win_counts(frame)
    index = {m: i for i, m in enumerate(battles.models)}
    notes, parts = row_notes(battles)
    notes = [notes[index[m]] for m in models]
    parts = np.array([parts[index[m]] for m in models])
    played = np.array([counts.get(m, (0, 0, 0, 0))[0] for m in models])
    preliminary = played < settings.min_battles
    ranks = ranks_within_parts(lower, upper, parts, ~preliminary)
    elo = _elo_columns(battles, models, settings if with_elo else None)
    needed: list[int | None] = [None] * len(models)
    if settings.votes_needed_width:
        needed = extra_battles(upper - lower, played, settings.votes_needed_width)
    rows = [
        ModelRow(
            models[m],
            float(values[m]),
            float(lower[m]),
            float(upper[m]),
            ranks[m],
            *counts.get(models[m], (0, 0, 0, 0)),
            preliminary=bool(preliminary[m]),
            part=int(parts[m]),
            notes=notes[m],
            elo=elo[m][0],
            elo_lower=elo[m][1],
            elo_upper=elo[m][2],
            votes_needed=needed[m],
        )
        for m in range(len(models))
    ]
    rows.sort(
        key=lambda r: (
            r.part,
            r.preliminary,
            r.rank_ub if r.rank_ub is not None else 0,
            -r.rating,
            r.model,
        )
    )
    warnings = []
    if preliminary.any():
        warnings.append(
            f"{int(preliminary.sum())} model(s) have fewer than {settings.min_battles} battles: "
            "listed as preliminary, after the ranked models, without a rank"
        )
    return AssembledRows(tuple(rows), int(parts.max(initial=1)), tuple(warnings))


def _elo_columns(
    battles: Battles, models: list[str], settings: RatingSettings | None
) -> list[tuple[float | None, float | None, float | None]]:
    if settings is None or not settings.elo:
        return [(None, None, None)] * len(models)
    from arena.ratings import elo_intervals

    fit = elo_intervals(
        battles,
        rounds=settings.rounds,
        seed=settings.seed,
        confidence=settings.confidence,
        scale=settings.scale,
        init_rating=settings.init_rating,
    )
    by_name = {
        str(m): (float(r), float(lo), float(hi))
        for m, r, lo, hi in zip(fit.models, fit.ratings, fit.lower, fit.upper, strict=True)
    }
    return [by_name.get(m, (None, None, None)) for m in models]
