"""Leaderboard figures: ratings with interval whiskers, observed win fractions, battle counts,
predicted win rates and ratings over time.

Each figure is written as a PNG (matplotlib, Agg backend) and all of them together as one
interactive HTML page (plotly) that carries the plotly library inline, so it opens offline.
Matrices and refits come from ``arena.ratings``; this module only draws.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from arena.leaderboard.filters import category_label
from arena.leaderboard.table import Leaderboard

if TYPE_CHECKING:
    import polars as pl

    from arena.leaderboard.compute import RatingSettings

MAX_MATRIX_MODELS = 25
MAX_TIMELINE_MODELS = 10
TIMELINE_POINTS = 12


@dataclass(frozen=True)
class Matrices:
    """Square matrices over ``models`` (ordered best first): row model vs column model."""

    models: tuple[str, ...]
    win_fraction: np.ndarray
    battle_count: np.ndarray
    predicted: np.ndarray


@dataclass(frozen=True)
class Timeline:
    """Cumulative refits: ``ratings[m][t]`` is model m's rating using battles up to ``times[t]``
    (NaN before the model has battles)."""

    times: tuple[datetime, ...]
    ratings: dict[str, np.ndarray]


def _square(values: Any, size: int) -> np.ndarray:
    arr = np.asarray(getattr(values, "matrix", values), dtype=float)
    if arr.shape != (size, size):
        raise ValueError(f"expected a {size}x{size} matrix, got {arr.shape}")
    return arr


def compute_matrices(
    frame: pl.DataFrame, board: Leaderboard, *, limit: int = MAX_MATRIX_MODELS
) -> Matrices:
    """Observed/predicted matrices for the board's top ``limit`` models."""
    from arena import ratings

    top = [m.model for m in board.models[:limit]]
    import polars as pl

    sub = frame.filter(pl.col("model_a").is_in(top) & pl.col("model_b").is_in(top))
    battles = ratings.Battles.from_columns(sub["model_a"], sub["model_b"], sub["winner"])
    order = [battles.models.index(m) for m in top if m in battles.models]
    names = tuple(battles.models[i] for i in order)
    k = len(battles.models)
    wins = _square(ratings.observed_win_fraction(battles), k)[np.ix_(order, order)]
    counts = _square(ratings.battle_count_matrix(battles), k)[np.ix_(order, order)]
    by_name = {m.model: m.rating for m in board.models}
    scale = float(board.meta.get("method", {}).get("scale", 400.0))
    predicted = _square(
        ratings.predicted_win_matrix(np.array([by_name[m] for m in names]), scale=scale),
        len(names),
    )
    return Matrices(names, wins, counts, predicted)


def compute_timeline(
    frame: pl.DataFrame,
    board: Leaderboard,
    settings: RatingSettings,
    *,
    points: int = TIMELINE_POINTS,
    limit: int = MAX_TIMELINE_MODELS,
) -> Timeline | None:
    """Refit on all battles up to each of ``points`` time cut-offs (quantiles of tstamp)."""
    import polars as pl

    from arena import ratings
    from arena.ratings.errors import RatingInputError

    timed = frame.filter(pl.col("tstamp").is_not_null()).sort("tstamp")
    if timed.height < 2 or timed["tstamp"].n_unique() < 2:
        return None
    stamps = timed["tstamp"].to_numpy()
    cuts = np.unique(np.quantile(stamps, np.linspace(0, 1, points + 1)[1:]))
    top = [m.model for m in board.models[:limit]]
    series = {m: np.full(len(cuts), np.nan) for m in top}
    for t, cut in enumerate(cuts):
        upto = timed.filter(pl.col("tstamp") <= cut)
        try:
            battles = ratings.Battles.from_columns(upto["model_a"], upto["model_b"], upto["winner"])
            anchor = (
                settings.anchor
                if settings.anchor and settings.anchor[0] in battles.models
                else None
            )
            fit = ratings.fit_bradley_terry(
                battles, scale=settings.scale, init_rating=settings.init_rating, anchor=anchor
            )
        except RatingInputError:
            continue
        values = fit.as_dict()
        for m in top:
            if m in values:
                series[m][t] = values[m]
    times = tuple(datetime.fromtimestamp(float(c), tz=UTC) for c in cuts)
    return Timeline(times, series)


def _mpl_text(text: str) -> str:
    # A "$" would start matplotlib mathtext; model names are shown literally.
    return text.replace("$", r"\$")


def _title(board: Leaderboard) -> str:
    return category_label(board.category) + (" · style control" if board.style_control else "")


def _png_figures(
    board: Leaderboard, mats: Matrices | None, timeline: Timeline | None, folder: Path
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    written = []
    rows = list(board.models)
    height = max(3.0, 0.28 * len(rows) + 1.5)
    fig, ax = plt.subplots(figsize=(8, height))
    y = np.arange(len(rows))[::-1]
    ratings_ = np.array([r.rating for r in rows])
    # An unbounded side (inf) is left undrawn; the table and notes say it is open.
    err = np.array([[r.rating - r.ci_lower for r in rows], [r.ci_upper - r.rating for r in rows]])
    err[~np.isfinite(err)] = np.nan
    ax.errorbar(ratings_, y, xerr=err, fmt="o", capsize=3)
    ax.set_yticks(y, [_mpl_text(r.model) for r in rows])
    ax.set_xlabel("Rating")
    confidence = 100 * board.meta.get("method", {}).get("confidence", 0.95)
    ax.set_title(_mpl_text(f"Ratings with {confidence:.0f}% intervals — {_title(board)}"))
    fig.tight_layout()
    path = folder / "ratings.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    if mats is not None and len(mats.models):
        for name, matrix, label, fmt in (
            ("win_fraction", mats.win_fraction, "Observed win fraction (row beats column)", ".2f"),
            ("battle_count", mats.battle_count, "Battles between each pair", ".0f"),
            ("predicted_win_rate", mats.predicted, "Predicted win rate (row beats column)", ".2f"),
        ):
            size = max(4.0, 0.45 * len(mats.models) + 2)
            fig, ax = plt.subplots(figsize=(size + 1, size))
            if name == "battle_count":
                image = ax.imshow(matrix, cmap="viridis")
            else:  # fractions: white at one half
                image = ax.imshow(matrix, cmap="RdBu", vmin=0.0, vmax=1.0)
            labels = [_mpl_text(m) for m in mats.models]
            ax.set_xticks(range(len(labels)), labels, rotation=90)
            ax.set_yticks(range(len(labels)), labels)
            if len(mats.models) <= 15:
                for i in range(len(mats.models)):
                    for j in range(len(mats.models)):
                        if np.isfinite(matrix[i, j]) and i != j:
                            ax.text(
                                j,
                                i,
                                format(matrix[i, j], fmt),
                                ha="center",
                                va="center",
                                fontsize=7,
                            )
            fig.colorbar(image, ax=ax)
            ax.set_title(label)
            fig.tight_layout()
            path = folder / f"{name}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)

    if timeline is not None:
        fig, ax = plt.subplots(figsize=(9, 5))
        for model, values in timeline.ratings.items():
            ax.plot(timeline.times, values, marker="o", label=_mpl_text(model))
        ax.set_ylabel("Rating (cumulative refit)")
        ax.set_title("Ratings over time")
        ax.legend(fontsize=7, loc="best")
        fig.autofmt_xdate()
        fig.tight_layout()
        path = folder / "ratings_over_time.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _plotly_figures(
    board: Leaderboard, mats: Matrices | None, timeline: Timeline | None
) -> list[Any]:
    import plotly.graph_objects as go

    figures = []
    rows = list(board.models)
    figures.append(
        go.Figure(
            go.Scatter(
                x=[r.rating for r in rows],
                y=[r.model for r in rows],
                mode="markers",
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [_finite_or_none(r.ci_upper - r.rating) for r in rows],
                    "arrayminus": [_finite_or_none(r.rating - r.ci_lower) for r in rows],
                },
                customdata=[[r.rank_ub or "preliminary", r.num_battles] for r in rows],
                hovertemplate="%{y}<br>rating %{x:.1f}<br>rank (UB) %{customdata[0]}"
                "<br>%{customdata[1]} battles<extra></extra>",
            ),
            layout={
                "title": f"Ratings — {_title(board)}",
                "yaxis": {"autorange": "reversed"},
                "height": max(400, 22 * len(rows) + 150),
            },
        )
    )
    if mats is not None and len(mats.models):
        for matrix, label, scale in (
            (mats.win_fraction, "Observed win fraction (row beats column)", "RdBu"),
            (mats.battle_count, "Battles between each pair", "Viridis"),
            (mats.predicted, "Predicted win rate (row beats column)", "RdBu"),
        ):
            figures.append(
                go.Figure(
                    go.Heatmap(
                        z=np.where(np.isfinite(matrix), matrix, None).tolist(),
                        x=list(mats.models),
                        y=list(mats.models),
                        colorscale=scale,
                    ),
                    layout={"title": label, "yaxis": {"autorange": "reversed"}, "height": 650},
                )
            )
    if timeline is not None:
        fig = go.Figure(layout={"title": "Ratings over time (cumulative refit)"})
        for model, values in timeline.ratings.items():
            fig.add_trace(
                go.Scatter(
                    x=[t.isoformat() for t in timeline.times],
                    y=np.where(np.isfinite(values), values, None).tolist(),
                    mode="lines+markers",
                    name=model,
                )
            )
        figures.append(fig)
    return figures


def write_plots(
    frame: pl.DataFrame,
    board: Leaderboard,
    folder: Path,
    *,
    settings: RatingSettings,
    timeline: bool = True,
) -> list[Path]:
    """Write the PNGs and ``leaderboard_plots.html`` for ``board`` (rated on ``frame``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mats = compute_matrices(frame, board) if len(board.models) >= 2 else None
    line = compute_timeline(frame, board, settings) if timeline else None
    written = _png_figures(board, mats, line, folder)
    figures = _plotly_figures(board, mats, line)
    parts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figures)
    ]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(_title(board))} — leaderboard plots</title></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    path = folder / "leaderboard_plots.html"
    path.write_text(page, encoding="utf-8")
    written.append(path)
    return written


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None
