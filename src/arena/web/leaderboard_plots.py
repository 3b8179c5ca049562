"""The leaderboard page's charts, drawn from what the artifacts hold.

- Ratings with intervals: the board's rows (as filtered on the page).
- Battles per pair: ``Leaderboard.uncertainty["battle_counts"]`` (plain boards; a
  style-controlled board borrows its category's plain board, which counts every battle).
- Win fractions per pair: ``uncertainty["win_fraction"]`` when the artifacts carry it (the
  observed share of the row model's battles against the column model that it won, ties one
  half, as ``arena.ratings.observed_win_fraction``); otherwise the win rates the ratings
  predict, titled as such, never passed off as observed.
- Ratings over time: ``meta["timeline"]`` (``{"times": [ISO dates], "ratings": {model:
  [rating or null]}}``) when a board carries one; otherwise the board as it was in each
  artifact set still on disk computed the same way from the same source, by battles rated.

Headings, captions and the words inside the charts come in the reader's language: the
caller passes the request's translations (English when none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from markupsafe import Markup

from arena.leaderboard.table import Leaderboard
from arena.web.leaderboard_svg import (
    IntervalPoint,
    compact,
    heatmap,
    interval_chart,
    line_chart,
)
from arena.web.leaderboard_text import ENGLISH, Words, chart_words

MAX_MATRIX_MODELS = 12
MAX_HISTORY_MODELS = 6
# Boards are comparable over time only when rated the same way from the same battles source.
HISTORY_METHOD_KEYS = ("model", "scale", "init_rating", "anchor", "ties", "reweight")


@dataclass(frozen=True)
class Figure:
    """One chart of the page: its SVG, or a note saying why there is none."""

    key: str
    heading: str
    caption: str
    svg: Markup | None = None
    note: str | None = None


@dataclass(frozen=True)
class PastBoard:
    """A board of an earlier artifact set: when it was computed and from which source."""

    created: str
    source: Any
    filters: Any
    board: Leaderboard


def _method(board: Leaderboard) -> dict[str, Any]:
    return dict(board.meta.get("method") or {})


def _listing(items: Sequence[str], tr: Words, limit: int = 8) -> str:
    shown = "; ".join(items[:limit])
    if len(items) <= limit:
        return shown
    more = len(items) - limit
    return shown + tr.ngettext("; and %(n)s more", "; and %(n)s more", more) % {"n": more}


def interval_figure(
    board: Leaderboard, rows: Sequence[Mapping[str, Any]], tr: Words = ENGLISH
) -> Figure:
    _ = tr.gettext
    confidence = _method(board).get("confidence")
    level = f"{confidence * 100:g}%" if isinstance(confidence, int | float) else ""
    heading = _("Ratings with intervals")
    if level:
        caption = _(
            "Each model's rating with its %(level)s interval, best first. An open arrow marks "
            "a side with no bound (∞); a hollow dot on a dashed line marks a preliminary "
            "model (too few battles to be ranked)."
        ) % {"level": level}
        title = _("Ratings with %(level)s intervals") % {"level": level}
    else:
        caption = _(
            "Each model's rating with its interval, best first. An open arrow marks a side "
            "with no bound (∞); a hollow dot on a dashed line marks a preliminary model (too "
            "few battles to be ranked)."
        )
        title = heading
    points = [
        IntervalPoint(
            str(r["model"]),
            r.get("rank"),
            float(r["rating"]),
            r.get("ci_lower"),
            r.get("ci_upper"),
            bool(r.get("preliminary")),
        )
        for r in rows
        if r.get("rating") is not None
    ]
    if not points:
        return Figure("intervals", heading, caption, note=_("No model to show."))
    words = chart_words(tr)

    def describe(p: IntervalPoint) -> str:
        lo = _("unbounded") if p.lower is None else f"{p.lower:.1f}"
        hi = _("unbounded") if p.upper is None else f"{p.upper:.1f}"
        span = words.interval % {"low": lo, "high": hi}
        if p.preliminary:
            span += ", " + words.preliminary
        return f"{p.model} {p.rating:.1f} ({span})"

    count = len(points)
    best_first = tr.ngettext("%(n)s model, best first: ", "%(n)s models, best first: ", count) % {
        "n": count
    }
    svg = interval_chart(
        points,
        chart_id="lb-chart-intervals",
        title=title,
        desc=best_first + _listing([describe(p) for p in points], tr),
        words=words,
    )
    return Figure("intervals", heading, caption, Markup(svg))


def _pair_source(
    board: Leaderboard, plain: Leaderboard | None
) -> tuple[dict[str, Any] | None, bool]:
    """The uncertainty block with per-pair data, and whether it was borrowed."""
    for candidate, borrowed in ((board, False), (plain, True)):
        block = candidate.uncertainty if candidate is not None else None
        if block and block.get("models") and block.get("battle_counts"):
            return block, borrowed
    return None, False


def _submatrix(
    block: Mapping[str, Any], key: str, models: Sequence[str]
) -> list[list[float | None]]:
    index = {str(m): i for i, m in enumerate(block["models"])}
    full = block[key]

    def value(a: str, b: str) -> float | None:
        if a not in index or b not in index:
            return None
        v = full[index[a]][index[b]]
        return float(v) if isinstance(v, int | float) and math.isfinite(v) else None

    return [[value(a, b) for b in models] for a in models]


def _predicted(board: Leaderboard, rows: Sequence[Mapping[str, Any]]) -> list[list[float | None]]:
    """Bradley–Terry win rates of row over column; blank across parts (not comparable)."""
    from arena.ratings.matrices import predicted_win_matrix

    scale = float(_method(board).get("scale") or 400.0)
    ratings = np.array([float(r["rating"]) for r in rows])
    predicted = predicted_win_matrix(ratings, scale=scale)
    parts = [r.get("part", 1) for r in rows]
    return [
        [
            None if i == j or parts[i] != parts[j] else float(predicted[i, j])
            for j in range(len(rows))
        ]
        for i in range(len(rows))
    ]


def pair_figures(
    board: Leaderboard,
    rows: Sequence[Mapping[str, Any]],
    plain: Leaderboard | None,
    tr: Words = ENGLISH,
) -> list[Figure]:
    _ = tr.gettext
    chosen = [r for r in rows if r.get("rating") is not None][:MAX_MATRIX_MODELS]
    models = [str(r["model"]) for r in chosen]
    top = (
        _("the top %(n)s models shown") % {"n": len(models)}
        if len(rows) > len(models)
        else _("the models shown")
    )
    block, borrowed = _pair_source(board, plain)
    observed = block is not None and block.get("win_fraction") is not None
    heading = _("Observed win fraction") if observed else _("Predicted win rate")
    counts_heading = _("Battles per pair")
    wins_caption = (
        _(
            "Share of the row model's battles against the column model that it won (ties "
            "count one half), for %(models)s."
        )
        % {"models": top}
        if observed
        else _(
            "How often the row model should beat the column model, predicted from the "
            "ratings, for %(models)s. The artifacts hold no observed win fractions per pair."
        )
        % {"models": top}
    )
    counts_caption = _("Battles between each pair of %(models)s.") % {"models": top}
    if borrowed:
        counts_caption += " " + _(
            "Counted on every battle of this category; the style-controlled fit uses those "
            "with style features."
        )
    if len(models) < 2:
        note = _("Charts of pairs need at least two models.")
        return [
            Figure("win-fraction", heading, wins_caption, note=note),
            Figure("battle-counts", counts_heading, counts_caption, note=note),
        ]
    if observed and block is not None:
        wins = _submatrix(block, "win_fraction", models)
    else:
        wins = _predicted(board, chosen)
    words = chart_words(tr)
    win_svg = heatmap(
        models,
        wins,
        chart_id="lb-chart-win-fraction",
        title=_("%(chart)s (row against column)") % {"chart": heading},
        desc=wins_caption
        + " "
        + _("Models: %(models)s.") % {"models": _listing(models, tr, MAX_MATRIX_MODELS)},
        kind="fraction",
        cell_title=lambda a, b, v: (
            _("%(row)s against %(column)s: %(share)s")
            % {"row": a, "column": b, "share": f"{v:.0%}"}
        ),
        words=words,
    )
    figures = [Figure("win-fraction", heading, wins_caption, Markup(win_svg))]
    if block is None:
        figures.append(
            Figure(
                "battle-counts",
                counts_heading,
                counts_caption,
                note=_("This leaderboard's artifacts hold no battle counts per pair."),
            )
        )
        return figures
    counts = _submatrix(block, "battle_counts", models)
    total = sum(v for i, row in enumerate(counts) for v in row[i + 1 :] if v)
    counts_svg = heatmap(
        models,
        [[v if v else None for v in row] for row in counts],
        chart_id="lb-chart-battle-counts",
        title=counts_heading,
        desc=counts_caption
        + " "
        + _("%(count)s battles among them in all.") % {"count": compact(total)},
        kind="count",
        cell_title=lambda a, b, v: (
            tr.ngettext(
                "%(row)s and %(column)s: %(n)s battle",
                "%(row)s and %(column)s: %(n)s battles",
                int(v),
            )
            % {"row": a, "column": b, "n": f"{v:,.0f}"}
        ),
        words=words,
    )
    figures.append(Figure("battle-counts", counts_heading, counts_caption, Markup(counts_svg)))
    return figures


def _comparable(current: Leaderboard, past: PastBoard, latest: PastBoard) -> bool:
    if (past.source, past.filters) != (latest.source, latest.filters):
        return False
    now, then = _method(current), _method(past.board)
    return all(now.get(k) == then.get(k) for k in HISTORY_METHOD_KEYS)


def _epoch(text: str) -> float | None:
    try:
        stamp = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def _month(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m")


def history_figure(
    board: Leaderboard,
    rows: Sequence[Mapping[str, Any]],
    past: Sequence[PastBoard],
    tr: Words = ENGLISH,
) -> Figure:
    """``past``: this board in every artifact set on disk, newest (the current one) first."""
    _ = tr.gettext
    words = chart_words(tr)
    models = [str(r["model"]) for r in rows if not r.get("preliminary")][:MAX_HISTORY_MODELS]
    heading = _("Ratings over time")
    timeline = board.meta.get("timeline")
    if isinstance(timeline, Mapping) and timeline.get("times") and models:
        times = [_epoch(t) for t in timeline["times"]]
        ratings = timeline.get("ratings") or {}
        series = {
            m: [(t, v) for t, v in zip(times, ratings.get(m) or (), strict=False) if t is not None]
            for m in models
            if ratings.get(m)
        }
        caption = _("Rating of the top %(n)s models refitted on the battles up to each date.") % {
            "n": len(series)
        }
        stamps = sorted({t for t in times if t is not None})
        step = max(1, math.ceil(len(stamps) / 6))
        if series and len(stamps) >= 2:
            svg = line_chart(
                series,
                chart_id="lb-chart-history",
                title=heading,
                desc=caption + " " + _series_desc(series, _month, tr),
                x_label=_month,
                x_ticks=stamps[::step],
                words=words,
            )
            return Figure("history", heading, caption, Markup(svg))
    caption = _(
        "Rating of the top models each time this board was computed from growing battles "
        "(the last computations kept on disk), by battles rated."
    )
    points: dict[float, PastBoard] = {}
    for item in past:  # newest first: a recount of the same battles keeps the newest
        battles = (item.board.meta.get("counts") or {}).get("battles_rated")
        if past and _comparable(board, item, past[0]) and isinstance(battles, int | float):
            points.setdefault(float(battles), item)
    if len(points) < 2 or not models:
        return Figure(
            "history",
            heading,
            caption,
            note=_(
                "Not enough history yet: this chart appears once the board has been "
                "computed at least twice, from different numbers of battles."
            ),
        )
    ordered = sorted(points.items())
    series = {}
    for m in models:
        values = []
        for battles, item in ordered:
            row = next((r for r in item.board.models if r.model == m), None)
            values.append((battles, row.rating if row is not None else None))
        series[m] = values
    svg = line_chart(
        series,
        chart_id="lb-chart-history",
        title=heading,
        desc=caption + " " + _series_desc(series, compact, tr),
        x_label=compact,
        x_ticks=[b for b, _item in ordered] if len(ordered) <= 6 else None,
        words=words,
    )
    return Figure("history", heading, caption, Markup(svg))


def _series_desc(
    series: Mapping[str, Sequence[tuple[float, float | None]]], label, tr: Words
) -> str:
    point = chart_words(tr).point
    parts = []
    for model, points in series.items():
        known = [(x, y) for x, y in points if y is not None]
        if known:
            (x0, y0), (x1, y1) = known[0], known[-1]
            first = point % {"value": f"{y0:.1f}", "x": label(x0)}
            last = point % {"value": f"{y1:.1f}", "x": label(x1)}
            parts.append(f"{model} {first}, {last}")
    return _listing(parts, tr) + "."


def page_figures(
    board: Leaderboard,
    rows: Sequence[Mapping[str, Any]],
    *,
    plain: Leaderboard | None = None,
    past: Sequence[PastBoard] = (),
    tr: Words = ENGLISH,
) -> list[Figure]:
    """Every chart of the page for ``rows`` (the board's rows as the page lists them), in
    the language of ``tr``."""
    return [
        interval_figure(board, rows, tr),
        *pair_figures(board, rows, plain, tr),
        history_figure(board, rows, past, tr),
    ]
