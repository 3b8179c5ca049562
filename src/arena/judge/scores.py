"""Scores from judgments: MT-Bench averages, pairwise win rates, Arena-Hard win rates vs the
baseline (through the rating engine), and judge tokens and cost.

MT-Bench: a model's turn score is the mean of its valid ratings on that turn (-1, i.e. no
verdict, is left out), its overall score the mean over all its valid ratings, and its
category score the mean over both turns of that category.

Arena-Hard: battles (see ``judgments.graded_battles``) are fitted with Bradley–Terry with the
baseline anchored, and every model's rating turned into its predicted win rate against the
baseline; bootstrap rounds give the interval. Style control adds answer-length and markdown
features (per side) to the same fit (``arena.ratings.fit_style_control``, "reference"
normalization: (a - b) / (a + b), standardized).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from arena.errors import BadRequest
from arena.judge.judgments import BattleColumns, judge_name


@dataclass(frozen=True)
class ModelScore:
    model: str
    turn_scores: dict[int, float]
    overall: float
    n: int
    categories: dict[str, float]


@dataclass(frozen=True)
class MTBenchScores:
    models: tuple[ModelScore, ...]
    excluded: int  # judgments without a valid score

    def by_model(self) -> dict[str, ModelScore]:
        return {m.model: m for m in self.models}


def mt_bench_scores(rows: Iterable[Mapping[str, Any]]) -> MTBenchScores:
    """Per-turn, per-category and overall mean ratings, best model first."""
    per_turn: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    per_cat: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    excluded = 0
    for row in rows:
        score = row.get("score")
        if not isinstance(score, int | float) or score < 0:
            excluded += 1
            continue
        model = str(row["model"])
        per_turn[model][int(row.get("turn", 1))].append(float(score))
        if row.get("category"):
            per_cat[model][str(row["category"])].append(float(score))
    models = []
    for model, turns in per_turn.items():
        all_scores = [s for values in turns.values() for s in values]
        models.append(
            ModelScore(
                model=model,
                turn_scores={t: float(np.mean(v)) for t, v in sorted(turns.items())},
                overall=float(np.mean(all_scores)),
                n=len(all_scores),
                categories={c: float(np.mean(v)) for c, v in sorted(per_cat[model].items())},
            )
        )
    models.sort(key=lambda m: -m.overall)
    return MTBenchScores(tuple(models), excluded)


@dataclass(frozen=True)
class PairRecord:
    model: str
    wins: int
    losses: int
    ties: int

    @property
    def total(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def win_rate(self) -> float:
        return self.wins / self.total if self.total else math.nan

    @property
    def adjusted_win_rate(self) -> float:
        """Ties count half (the MT-Bench paper's "win rate adjusted")."""
        return (self.wins + 0.5 * self.ties) / self.total if self.total else math.nan


def pair_records(battles: BattleColumns, *, against: str | None = None) -> list[PairRecord]:
    """Win/loss/tie counts per model (only battles against ``against`` when given)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for a, b, w in zip(battles.model_a, battles.model_b, battles.winner, strict=True):
        for me, other, side in ((a, b, "model_a"), (b, a, "model_b")):
            if against is not None and (other != against or me == against):
                continue
            if w == side:
                counts[me][0] += 1
            elif w in ("tie", "tie (bothbad)"):
                counts[me][2] += 1
            else:
                counts[me][1] += 1
    records = [PairRecord(m, *c) for m, c in counts.items()]
    records.sort(key=lambda r: -r.adjusted_win_rate)
    return records


# ---------------------------------------------------------------- rating engine


@dataclass(frozen=True)
class WinRateRow:
    model: str
    score: float  # predicted win rate against the baseline, in percent
    lower: float
    upper: float
    rating: float
    n_battles: float


@dataclass(frozen=True)
class BaselineScores:
    baseline: str
    rows: tuple[WinRateRow, ...]
    style_rows: tuple[WinRateRow, ...] | None
    style_coefficients: dict[str, float] | None
    n_battles: int


def win_rate(rating: np.ndarray | float, baseline_rating: float, scale: float, base: float):
    """Bradley–Terry probability of beating the baseline, in percent."""
    return 100.0 / (1.0 + np.power(base, (baseline_rating - np.asarray(rating)) / scale))


def to_battles(columns: BattleColumns, features: Mapping[str, Any] | None = None):
    """``arena.ratings.Battles`` from battle columns (optionally with per-side features)."""
    from arena.ratings import Battles

    kwargs: dict[str, Any] = {}
    if features is not None:
        kwargs = {
            "features_a": features["a"],
            "features_b": features["b"],
            "feature_names": features["names"],
        }
    return Battles.from_columns(
        columns.model_a.astype(str),
        columns.model_b.astype(str),
        columns.winner.astype(str),
        weights=columns.weights,
        **kwargs,
    )


def baseline_scores(
    columns: BattleColumns,
    baseline: str,
    *,
    rounds: int = 100,
    seed: int = 0,
    features: Mapping[str, Any] | None = None,
    scale: float = 400.0,
    base: float = 10.0,
    style_ridge: float = 1e-3,
) -> BaselineScores:
    """Win rate against the baseline with bootstrap intervals, and with style control when
    per-side ``features`` (``{"a": (n,k), "b": (n,k), "names": [...]}``) are given.

    ``style_ridge`` is the rating engine's ``coef_ridge`` (per battle, on the style
    coefficients). A small one keeps the fit finite when a rare feature (say, the few
    answers with headers) happens to sit only in battles with one outcome, which would
    otherwise send its coefficient to infinity; at 1e-3 it barely moves well-determined
    coefficients.
    """
    from arena.ratings import bootstrap_intervals, fit_bradley_terry

    if len(columns) == 0:
        raise BadRequest(
            "no battles with a verdict to score: every judgment failed or was unparsable; "
            "read the 'error' and 'judgment' fields of the judgment file, then rerun the "
            "grading command (failed calls are retried) or try a stronger judge"
        )
    battles = to_battles(columns)
    if baseline not in battles.models:
        raise BadRequest(
            f"baseline {baseline!r} is in no battle; models: {', '.join(battles.models)}"
        )
    anchor = (baseline, 1000.0)
    fit = fit_bradley_terry(battles, scale=scale, base=base, anchor=anchor)
    intervals = bootstrap_intervals(
        battles, rounds=rounds, seed=seed, scale=scale, base=base, anchor=anchor
    )
    counts = _battle_counts(columns)
    rows = _win_rate_rows(
        fit.models, fit.ratings, intervals.lower, intervals.upper, baseline, scale, base, counts
    )
    style_rows = None
    coefficients = None
    if features is not None:
        from arena.ratings import fit_style_control

        style = fit_style_control(
            to_battles(columns, features),
            ci="bootstrap",
            rounds=rounds,
            seed=seed,
            scale=scale,
            base=base,
            anchor=anchor,
            coef_ridge=style_ridge,
        )
        style_rows = _win_rate_rows(
            style.models, style.ratings, style.lower, style.upper, baseline, scale, base, counts
        )
        coefficients = {k: float(v) for k, v in dict(style.coefficients).items()}
    return BaselineScores(baseline, rows, style_rows, coefficients, len(columns))


def _battle_counts(columns: BattleColumns) -> dict[str, float]:
    counts: dict[str, float] = defaultdict(float)
    for a, b in zip(columns.model_a, columns.model_b, strict=True):
        counts[a] += 1
        counts[b] += 1
    return counts


def _win_rate_rows(
    models: Sequence[str],
    ratings: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    baseline: str,
    scale: float,
    base: float,
    counts: Mapping[str, float],
) -> tuple[WinRateRow, ...]:
    b = float(ratings[list(models).index(baseline)])
    rows = [
        WinRateRow(
            model=m,
            score=float(win_rate(r, b, scale, base)),
            lower=float(win_rate(lo, b, scale, base)),
            upper=float(win_rate(hi, b, scale, base)),
            rating=float(r),
            n_battles=counts.get(m, 0.0),
        )
        for m, r, lo, hi in zip(models, ratings, lower, upper, strict=True)
    ]
    rows.sort(key=lambda r: -r.score)
    return tuple(rows)


@dataclass(frozen=True)
class Leaderboard:
    models: tuple[str, ...]
    ratings: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def leaderboard(columns: BattleColumns, *, rounds: int = 100, seed: int = 0) -> Leaderboard:
    """Bradley–Terry ratings with bootstrap intervals, best first."""
    from arena.ratings import bootstrap_intervals

    intervals = bootstrap_intervals(to_battles(columns), rounds=rounds, seed=seed)
    order = np.argsort(-np.asarray(intervals.ratings))
    return Leaderboard(
        tuple(intervals.models[i] for i in order),
        np.asarray(intervals.ratings)[order],
        np.asarray(intervals.lower)[order],
        np.asarray(intervals.upper)[order],
    )


# ---------------------------------------------------------------- tokens and cost


@dataclass(frozen=True)
class JudgeCost:
    """Tokens the judgments of one judge used (a cached judgment counts the tokens of the
    call that first produced it; retries after unparsable answers are included)."""

    judge: str
    judgments: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    with_usage: int = 0  # judgments that recorded token usage (public files often do not)


def _usages(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if "games" in row:
        return [g.get("usage") or {} for g in row["games"]]
    return [row.get("usage") or {}]


def judge_costs(
    rows: Iterable[Mapping[str, Any]], prices: Mapping[str, Mapping[str, float]] | None = None
) -> list[JudgeCost]:
    """Tokens per judge from the usage recorded in each judgment, priced per million tokens
    when the price table names the judge (``{judge: {input: $, output: $}}``)."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in rows:
        name = judge_name(row)
        for usage in _usages(row):
            totals[name][0] += 1
            totals[name][1] += int(usage.get("prompt_tokens", 0))
            totals[name][2] += int(usage.get("completion_tokens", 0))
            totals[name][3] += bool(usage)
    out = []
    for name, (count, prompt, completion, with_usage) in sorted(totals.items()):
        cost = None
        if prices and name in prices and with_usage:
            price = prices[name]
            cost = (
                prompt * price_of(price, "input") + completion * price_of(price, "output")
            ) / 1e6
        out.append(JudgeCost(name, count, prompt, completion, cost, with_usage))
    return out


def price_of(price: Mapping[str, float], side: str) -> float:
    aliases = {"input": ("input", "prompt"), "output": ("output", "completion")}[side]
    for key in aliases:
        if key in price:
            return float(price[key])
    return 0.0
