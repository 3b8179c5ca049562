"""Server-rendered SVG charts for the leaderboard page: ratings with intervals, pair heatmaps
and ratings over time.

The page's policy allows no inline script or style, so the charts are plain SVG built with
ElementTree (every name is escaped) and coloured by presentation attributes and classes
that ``leaderboard.css`` themes: lines and text follow ``currentColor``, so they read in
dark and light themes alike. Each chart has a ``<title>`` and ``<desc>`` it is labelled by,
a ``viewBox`` to scale to the screen, and a ``<title>`` per mark for a pointer's tooltip.
The few words the charts draw come in a ``ChartWords``, translated by the caller.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
# Diverging (win fractions, one half neutral) and sequential (counts) colour stops.
DIVERGING = ("#b2182b", "#ef8a62", "#f7f7f7", "#67a9cf", "#2166ac")
SEQUENTIAL = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
SERIES_CLASSES = 8  # lb-series-0 … lb-series-7 in leaderboard.css
WIDE_HEATMAP = 8  # more models than this: a minimum width (the page scrolls it on phones)


@dataclass(frozen=True)
class ChartWords:
    """The words drawn inside the charts, already in the reader's language (``%(name)s``
    placeholders filled here)."""

    preliminary: str = "preliminary"
    rank: str = "rank %(rank)s"
    interval: str = "%(low)s to %(high)s"
    scale: str = "scale"
    rating: str = "Rating"
    point: str = "%(value)s at %(x)s"


ENGLISH = ChartWords()


@dataclass(frozen=True)
class IntervalPoint:
    """One model's mark: ``lower``/``upper`` of ``None`` mean that side is unbounded."""

    model: str
    rank: int | None
    rating: float
    lower: float | None
    upper: float | None
    preliminary: bool = False


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if math.isfinite(value) else "0"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: object) -> ET.Element:
    node = ET.SubElement(
        parent, tag, {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items()}
    )
    if text is not None:
        node.text = text
    return node


def _chart(chart_id: str, width: float, height: float, title: str, desc: str) -> ET.Element:
    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "id": chart_id,
            "class": "lb-chart",
            "viewBox": f"0 0 {_n(width)} {_n(height)}",
            "width": _n(width),
            "height": _n(height),
            "role": "img",
            "aria-labelledby": f"{chart_id}-title {chart_id}-desc",
            "font-family": FONT,
            "font-size": "13",
            "fill": "currentColor",
        },
    )
    _el(svg, "title", title, id=f"{chart_id}-title")
    _el(svg, "desc", desc, id=f"{chart_id}-desc")
    return svg


def _text(svg: ET.Element) -> str:
    return ET.tostring(svg, encoding="unicode", short_empty_elements=True)


def short(name: str, limit: int) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def compact(value: float) -> str:
    """A count as people write it: 950, 1.2k, 3.4M."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M".replace(".0M", "M")
    if abs(value) >= 1e3:
        return f"{value / 1e3:.1f}k".replace(".0k", "k")
    return f"{value:.0f}"


def _scale(low: float, high: float, left: float, right: float) -> Callable[[float], float]:
    span = (high - low) or 1.0
    return lambda v: left + (v - low) / span * (right - left)


def interval_chart(
    points: Sequence[IntervalPoint],
    *,
    chart_id: str,
    title: str,
    desc: str,
    words: ChartWords = ENGLISH,
) -> str:
    """Each model on its own row: name and rating above, the interval line below, the
    rating as a dot; an unbounded side runs to the edge and ends in an open arrow;
    preliminary models have a hollow dot and a dashed line."""
    width, row_h, top, axis_h, pad = 480.0, 36.0, 6.0, 26.0, 10.0
    height = top + row_h * len(points) + axis_h
    svg = _chart(chart_id, width, height, title, desc)
    finite = [v for p in points for v in (p.rating, p.lower, p.upper) if v is not None]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    margin = (high - low) * 0.06 or 10.0
    low, high = low - margin, high + margin
    left, right = pad + 8, width - pad - 8
    x = _scale(low, high, left, right)
    bottom = top + row_h * len(points)
    grid = _el(svg, "g", class_="lb-grid")
    for tick in nice_ticks(low, high, 6):
        _el(grid, "line", x1=_n(x(tick)), x2=_n(x(tick)), y1=_n(top), y2=_n(bottom + 4))
        _el(
            grid, "text", f"{tick:g}", x=_n(x(tick)), y=_n(bottom + 18),
            text_anchor="middle", font_size="11", class_="lb-axis-label",
        )  # fmt: skip
    for i, p in enumerate(points):
        y = top + row_h * i
        lo = "−∞" if p.lower is None else f"{p.lower:.1f}"
        hi = "∞" if p.upper is None else f"{p.upper:.1f}"
        place = (
            words.preliminary if p.preliminary or p.rank is None else words.rank % {"rank": p.rank}
        )
        span = words.interval % {"low": lo, "high": hi}
        row = _el(svg, "g", class_="lb-row lb-row-prelim" if p.preliminary else "lb-row")
        _el(row, "title", f"{p.model}: {p.rating:.1f} ({span}), {place}")
        label = f"{p.rank}. {p.model}" if p.rank is not None and not p.preliminary else p.model
        if p.preliminary:
            label += f" ({words.preliminary})"
        _el(row, "text", short(label, 36), x=_n(pad), y=_n(y + 13))
        _el(
            row, "text", f"{p.rating:.1f}", x=_n(width - pad), y=_n(y + 13),
            text_anchor="end", class_="lb-value",
        )  # fmt: skip
        line_y = y + 25
        x1 = left if p.lower is None else x(p.lower)
        x2 = right if p.upper is None else x(p.upper)
        dash = {"stroke_dasharray": "4 3"} if p.preliminary else {}
        _el(
            row, "line", x1=_n(x1), x2=_n(x2), y1=_n(line_y), y2=_n(line_y),
            class_="lb-interval", stroke="currentColor", stroke_width="2", **dash,
        )  # fmt: skip
        for side, edge in (("lower", p.lower is None), ("upper", p.upper is None)):
            if not edge:
                cap = x1 if side == "lower" else x2
                _el(
                    row, "line", x1=_n(cap), x2=_n(cap), y1=_n(line_y - 5), y2=_n(line_y + 5),
                    stroke="currentColor", stroke_width="2",
                )  # fmt: skip
                continue
            tip, back = (x1, x1 + 8) if side == "lower" else (x2, x2 - 8)
            arrow = [(back, line_y - 6), (tip, line_y), (back, line_y + 6)]
            _el(
                row, "polyline", class_="lb-open",
                points=" ".join(f"{_n(px)},{_n(py)}" for px, py in arrow),
                fill="none", stroke="currentColor", stroke_width="2",
            )  # fmt: skip
        _el(
            row, "circle", cx=_n(x(p.rating)), cy=_n(line_y), r="5",
            class_="lb-dot lb-dot-prelim" if p.preliminary else "lb-dot", stroke_width="2",
        )  # fmt: skip
    return _text(svg)


def _mix(stops: Sequence[str], t: float) -> str:
    t = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    a, b = stops[i], stops[i + 1]
    rgb = [
        round(int(a[k : k + 2], 16) + (int(b[k : k + 2], 16) - int(a[k : k + 2], 16)) * (t - i))
        for k in (1, 3, 5)
    ]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _ink(fill: str) -> str:
    """Dark or light text, whichever reads on ``fill`` (relative luminance)."""
    r, g, b = (int(fill[k : k + 2], 16) / 255 for k in (1, 3, 5))
    return "#111111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#ffffff"


def heatmap(
    models: Sequence[str],
    matrix: Sequence[Sequence[float | None]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    kind: str,
    cell_title: Callable[[str, str, float], str],
    words: ChartWords = ENGLISH,
) -> str:
    """Row model against column model. ``kind`` "fraction" (0–1, one half neutral) or
    "count" (0 to the largest count). Empty cells (no data, the diagonal) stay blank.
    Columns are numbered; row labels carry the same numbers."""
    count = len(models)
    label_w, cell, head, pad, legend_h, swatch = 150.0, 30.0, 22.0, 6.0, 40.0, 36.0
    width = label_w + max(cell * count, swatch * 5) + pad
    height = head + cell * count + legend_h
    svg = _chart(chart_id, width, height, title, desc)
    if count > WIDE_HEATMAP:
        svg.set("class", "lb-chart lb-heatmap-wide")
    values = [v for row in matrix for v in row if v is not None]
    peak = max(values, default=1.0) or 1.0

    def colour(v: float) -> str:
        return _mix(DIVERGING, v) if kind == "fraction" else _mix(SEQUENTIAL, math.sqrt(v / peak))

    def label(v: float) -> str:
        return (
            f"{v:.2f}".lstrip("0")
            if kind == "fraction" and v < 1
            else ("1" if kind == "fraction" else compact(v))
        )

    for j in range(count):
        _el(
            svg, "text", str(j + 1), x=_n(label_w + cell * (j + 0.5)), y=_n(head - 7),
            text_anchor="middle", font_size="11", class_="lb-axis-label",
        )  # fmt: skip
    for i, name in enumerate(models):
        y = head + cell * i
        row_label = _el(svg, "g", class_="lb-row-label")
        _el(row_label, "title", name)
        _el(
            row_label, "text", f"{i + 1}. {short(name, 18)}", x=_n(label_w - 6),
            y=_n(y + cell / 2 + 4), text_anchor="end", font_size="12",
        )  # fmt: skip
        for j, other in enumerate(models):
            v = matrix[i][j]
            x = label_w + cell * j
            box = {"x": _n(x + 1), "y": _n(y + 1), "width": _n(cell - 2), "height": _n(cell - 2)}
            if i == j or v is None or not math.isfinite(v):
                _el(svg, "rect", class_="lb-cell-empty", fill="none", rx="3", **box)
                continue
            fill = colour(v)
            group = _el(svg, "g", class_="lb-cell")
            _el(group, "title", cell_title(name, other, v))
            _el(group, "rect", fill=fill, rx="3", **box)
            _el(
                group, "text", label(v), x=_n(x + cell / 2), y=_n(y + cell / 2 + 4),
                text_anchor="middle", font_size="10.5", fill=_ink(fill),
            )  # fmt: skip
    legend_y = head + cell * count + 12
    steps = [0.0, 0.25, 0.5, 0.75, 1.0]
    for k, t in enumerate(steps):
        v = t if kind == "fraction" else peak * t * t
        fill = colour(v)
        x = label_w + swatch * k
        _el(svg, "rect", x=_n(x), y=_n(legend_y), width="34", height="12", fill=fill, rx="2")
        _el(
            svg, "text", label(v) if kind == "count" else f"{v:g}", x=_n(x + 17),
            y=_n(legend_y + 25), text_anchor="middle", font_size="10", class_="lb-axis-label",
        )  # fmt: skip
    _el(
        svg, "text", words.scale, x=_n(label_w - 6), y=_n(legend_y + 10), text_anchor="end",
        font_size="11", class_="lb-axis-label",
    )  # fmt: skip
    return _text(svg)


def line_chart(
    series: Mapping[str, Sequence[tuple[float, float | None]]],
    *,
    chart_id: str,
    title: str,
    desc: str,
    x_label: Callable[[float], str],
    x_ticks: Sequence[float] | None = None,
    words: ChartWords = ENGLISH,
) -> str:
    """One line per model (points with no value are gaps), a legend below the plot."""
    width, plot_h, left, right_pad = 480.0, 200.0, 48.0, 14.0
    top, axis_h, legend_row = 24.0, 30.0, 22.0
    height = top + plot_h + axis_h + legend_row * len(series) + 6
    svg = _chart(chart_id, width, height, title, desc)
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points if y is not None]
    x_low, x_high = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y_low, y_high = (min(ys), max(ys)) if ys else (0.0, 1.0)
    y_margin = (y_high - y_low) * 0.08 or 10.0
    y_low, y_high = y_low - y_margin, y_high + y_margin
    x = _scale(x_low, x_high, left + 8, width - right_pad - 8)
    y = _scale(y_low, y_high, top + plot_h, top)
    grid = _el(svg, "g", class_="lb-grid")
    for tick in nice_ticks(y_low, y_high, 5):
        _el(grid, "line", x1=_n(left), x2=_n(width - right_pad), y1=_n(y(tick)), y2=_n(y(tick)))
        _el(
            grid, "text", f"{tick:g}", x=_n(left - 6), y=_n(y(tick) + 4), text_anchor="end",
            font_size="11", class_="lb-axis-label",
        )  # fmt: skip
    ticks = x_ticks if x_ticks is not None else nice_ticks(x_low, x_high, 5)
    for tick in ticks:
        _el(
            grid, "text", x_label(tick), x=_n(x(tick)), y=_n(top + plot_h + 18),
            text_anchor="middle", font_size="11", class_="lb-axis-label",
        )  # fmt: skip
    _el(
        svg, "text", words.rating, x="4", y="14", font_size="11", class_="lb-axis-label",
    )  # fmt: skip
    for k, (model, points) in enumerate(series.items()):
        cls = f"lb-series-{k % SERIES_CLASSES}"
        group = _el(svg, "g", class_=f"lb-series {cls}")
        _el(group, "title", model)
        run: list[str] = []
        for px, py in [*points, (math.nan, None)]:
            if py is None:
                if len(run) > 1:
                    _el(group, "polyline", points=" ".join(run), fill="none", stroke_width="2")
                run = []
                continue
            run.append(f"{_n(x(px))},{_n(y(py))}")
            dot = _el(group, "circle", cx=_n(x(px)), cy=_n(y(py)), r="3.5")
            point = words.point % {"value": f"{py:.1f}", "x": x_label(px)}
            _el(dot, "title", f"{model}: {point}")
        legend_y = top + plot_h + axis_h + legend_row * k + 12
        _el(
            svg, "line", x1=_n(left), x2=_n(left + 22), y1=_n(legend_y - 4), y2=_n(legend_y - 4),
            class_=f"lb-legend-line {cls}", stroke_width="3",
        )  # fmt: skip
        _el(svg, "text", short(model, 44), x=_n(left + 30), y=_n(legend_y), font_size="12")
    return _text(svg)
