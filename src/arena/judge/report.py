"""What ``arena judge show`` computes and prints: one report from any mix of judgment files.

Single ratings give the MT-Bench table (and radar plot); pairwise judgments give win/loss/tie
records; Arena-Hard judgments and battle tables give the win rate against the baseline with
bootstrap intervals, with style control when the answers are at hand; replayed red-team
attacks give each model's resist rate with a Wilson interval; every judgment with recorded
usage adds to the tokens-and-cost table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from arena.errors import BadRequest
from arena.judge.judgments import (
    BattleColumns,
    concat,
    graded_battles,
    load_judgments,
    pair_battles,
    table_battles,
)
from arena.judge.redteam_grading import ResistanceRow, resistance_summary
from arena.judge.scores import (
    BaselineScores,
    JudgeCost,
    Leaderboard,
    MTBenchScores,
    PairRecord,
    baseline_scores,
    judge_costs,
    leaderboard,
    mt_bench_scores,
    pair_records,
)


@dataclass(frozen=True)
class Report:
    mt_bench: MTBenchScores | None
    plot: Path | None
    pairwise: tuple[PairRecord, ...] | None
    pairwise_baseline: str | None
    pairwise_ratings: Leaderboard | None
    arena_hard: BaselineScores | None
    skipped_games: int
    costs: tuple[JudgeCost, ...]
    skipped_pairs: int = 0  # pairwise judgments without a verdict in both orders
    redteam: tuple[ResistanceRow, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            if isinstance(value, dict):
                return {str(k): clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            if isinstance(value, Path):
                return str(value)
            return value

        out = asdict(self)
        if self.pairwise_ratings is not None:
            board = self.pairwise_ratings
            out["pairwise_ratings"] = [
                {"model": m, "rating": float(r), "lower": float(lo), "upper": float(hi)}
                for m, r, lo, hi in zip(
                    board.models, board.ratings, board.lower, board.upper, strict=True
                )
            ]
        if self.pairwise is not None:
            out["pairwise"] = [
                {**asdict(r), "win_rate": r.win_rate, "adjusted_win_rate": r.adjusted_win_rate}
                for r in self.pairwise
            ]
        return clean(out)


def infer_baseline(columns: BattleColumns) -> str:
    """The model that takes part in every battle."""
    common: set[str] | None = None
    for a, b in zip(columns.model_a, columns.model_b, strict=True):
        pair = {str(a), str(b)}
        common = pair if common is None else common & pair
        if not common:
            break
    if not common or len(common) != 1:
        raise BadRequest("no single model is in every battle; pass --baseline")
    return common.pop()


def build_report(
    judgments: Sequence[str],
    *,
    baseline: str | None = None,
    answers: Sequence[str] = (),
    plot: Path | None = None,
    prices: Mapping[str, Mapping[str, float]] | None = None,
    rounds: int = 100,
    seed: int = 0,
    questions: str | None = None,
) -> Report:
    data = load_judgments(judgments)
    single = data.single
    if questions and single:
        # Public judgment files carry no category; take it from the question file.
        from arena.judge.benchmark_files import load_questions

        category = {q.key: q.category for q in load_questions(questions)}
        single = tuple(
            r if r.get("category") else {**r, "category": category.get(str(r["question_id"]))}
            for r in single
        )
    mt = mt_bench_scores(single) if single else None
    plot_path = None
    if mt is not None and plot is not None:
        from arena.judge.plots import radar_plot

        by_category = {m.model: m.categories for m in mt.models if m.categories}
        if len({c for cats in by_category.values() for c in cats}) >= 3:
            plot_path = radar_plot(by_category, plot)

    pairwise = None
    pair_base = None
    pair_board = None
    skipped_pairs = 0
    if data.pair:
        columns, skipped_pairs = pair_battles(data.pair)
        pair_base = baseline if baseline in set(columns.model_a) | set(columns.model_b) else None
        pairwise = tuple(pair_records(columns, against=pair_base))
        if len(columns):
            pair_board = leaderboard(columns, rounds=rounds, seed=seed)

    arena_hard = None
    skipped = 0
    if data.graded or data.battle:
        graded, skipped = graded_battles(data.graded, baseline=baseline)
        columns = concat(graded, table_battles(data.battle))
        named = {r["baseline"] for r in data.graded if r.get("baseline")}
        base = baseline or (named.pop() if len(named) == 1 else infer_baseline(columns))
        features = None
        if answers:
            from arena.judge.benchmark_files import load_answers
            from arena.judge.style import battle_features

            features = battle_features(columns, load_answers(answers))
        arena_hard = baseline_scores(columns, base, rounds=rounds, seed=seed, features=features)

    judged_replays = [r for r in data.redteam if r.get("judge")]
    costs = judge_costs([*single, *data.pair, *data.graded, *judged_replays], prices)
    return Report(
        mt,
        plot_path,
        pairwise,
        pair_base,
        pair_board,
        arena_hard,
        skipped,
        tuple(costs),
        skipped_pairs,
        resistance_summary(data.redteam) if data.redteam else None,
    )


NO_VERDICTS = (
    "The judge gave no usable verdict: its calls failed ('error' in the judgment rows; rerun "
    "the grading command, which retries just those) or its answers did not end in the verdict "
    "format the prompt asks for ('unparsable'; read the 'judgment' fields, and try a stronger "
    "judge or a larger --max-tokens)."
)


def print_report(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    no_mt_bench = report.mt_bench is not None and not report.mt_bench.models
    no_pairwise = report.pairwise is not None and not report.pairwise
    if no_mt_bench:
        console.print(f"MT-Bench: none of {report.mt_bench.excluded} judgments has a score.")
    if no_pairwise:
        console.print(f"Pairwise: none of {report.skipped_pairs} judgments has a verdict.")
    if no_mt_bench or no_pairwise:
        console.print(NO_VERDICTS)
    if report.mt_bench is not None and report.mt_bench.models:
        turns = sorted({t for m in report.mt_bench.models for t in m.turn_scores})
        table = Table(title="MT-Bench (single grading)")
        table.add_column("model")
        for t in turns:
            table.add_column(f"turn {t}", justify="right")
        table.add_column("overall", justify="right")
        table.add_column("n", justify="right")
        for m in report.mt_bench.models:
            cells = [f"{m.turn_scores[t]:.2f}" if t in m.turn_scores else "-" for t in turns]
            table.add_row(m.model, *cells, f"{m.overall:.2f}", str(m.n))
        console.print(table)
        categories = sorted({c for m in report.mt_bench.models for c in m.categories})
        if categories:
            cat_table = Table(title="MT-Bench by category")
            cat_table.add_column("model")
            for c in categories:
                cat_table.add_column(c, justify="right")
            for m in report.mt_bench.models:
                cat_table.add_row(
                    m.model,
                    *(f"{m.categories[c]:.2f}" if c in m.categories else "-" for c in categories),
                )
            console.print(cat_table)
        if report.mt_bench.excluded:
            console.print(f"{report.mt_bench.excluded} judgments had no valid score (left out)")
        if report.plot is not None:
            console.print(f"radar plot: {report.plot}")
    if report.pairwise is not None and report.pairwise:
        title = "Pairwise" + (
            f" against {report.pairwise_baseline}" if report.pairwise_baseline else ""
        )
        table = Table(title=title)
        for col in ("model", "win", "loss", "tie", "win rate", "win rate (ties half)"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for r in report.pairwise:
            table.add_row(
                r.model, str(r.wins), str(r.losses), str(r.ties),
                f"{r.win_rate:.1%}", f"{r.adjusted_win_rate:.1%}",
            )  # fmt: skip
        console.print(table)
        if report.skipped_pairs:
            console.print(f"{report.skipped_pairs} pairwise judgments had no verdict (left out)")
    if report.pairwise_ratings is not None:
        board = report.pairwise_ratings
        table = Table(title="Pairwise: Bradley–Terry ratings (bootstrap 95% CI)")
        for col in ("model", "rating", "95% CI"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for m, r, lo, hi in zip(board.models, board.ratings, board.lower, board.upper, strict=True):
            table.add_row(m, f"{r:.0f}", f"{lo:.0f} – {hi:.0f}")
        console.print(table)
    if report.arena_hard is not None:
        ah = report.arena_hard
        table = Table(title=f"Win rate against {ah.baseline} (Bradley–Terry, bootstrap 95% CI)")
        table.add_column("model")
        table.add_column("score", justify="right")
        table.add_column("95% CI", justify="right")
        if ah.style_rows is not None:
            table.add_column("style-controlled", justify="right")
            table.add_column("95% CI (style)", justify="right")
        table.add_column("battles", justify="right")
        style = {r.model: r for r in ah.style_rows} if ah.style_rows else {}
        for r in ah.rows:
            cells = [r.model, f"{r.score:.1f}", f"{r.lower:.1f} – {r.upper:.1f}"]
            if ah.style_rows is not None:
                s = style[r.model]
                cells += [f"{s.score:.1f}", f"{s.lower:.1f} – {s.upper:.1f}"]
            cells.append(f"{r.n_battles:g}")
            table.add_row(*cells)
        console.print(table)
        if report.skipped_games:
            console.print(f"{report.skipped_games} games had no verdict (left out)")
    if report.redteam:
        table = Table(title="Red-team replay: attacks resisted (Wilson 95% CI)")
        for col in ("model", "replayed", "resisted", "succeeded", "unjudged", "resist rate"):
            table.add_column(col, justify="left" if col == "model" else "right")
        table.add_column("95% CI", justify="right", no_wrap=True)
        for r in report.redteam:
            decided = not math.isnan(r.resist_rate)
            table.add_row(
                r.model, str(r.replayed), str(r.resisted), str(r.succeeded), str(r.unjudged),
                f"{r.resist_rate:.1%}" if decided else "-",
                f"{r.lower:.1%}–{r.upper:.1%}" if decided else "-",
            )  # fmt: skip
        console.print(table)
    if report.costs:
        table = Table(title="Judges: tokens and cost")
        for col in ("judge", "judgments", "prompt tokens", "completion tokens", "cost (USD)"):
            table.add_column(col, justify="left" if col == "judge" else "right")
        for c in report.costs:
            cost = "-" if c.cost is None else f"{c.cost:.4f}"
            if c.with_usage:
                tokens = [str(c.prompt_tokens), str(c.completion_tokens)]
            else:
                tokens = ["not recorded", "not recorded"]
            table.add_row(c.judge, str(c.judgments), *tokens, cost)
        console.print(table)
