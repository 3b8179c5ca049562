"""A ``Leaderboard`` as text: a Rich table, JSON, CSV or a Markdown table."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import TYPE_CHECKING

from arena.leaderboard.filters import category_label
from arena.leaderboard.table import NOTE_TEXT, Leaderboard, ModelRow

if TYPE_CHECKING:
    from rich.table import Table

FORMATS = ("table", "json", "csv", "markdown")
CSV_COLUMNS = (
    "rank_ub",
    "model",
    "rating",
    "ci_lower",
    "ci_upper",
    "num_battles",
    "wins",
    "losses",
    "ties",
    "win_rate",
    "preliminary",
    "part",
    "notes",
    "elo",
    "elo_lower",
    "elo_upper",
    "votes_needed",
)


def to_json(board: Leaderboard) -> str:
    return json.dumps(board.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def to_csv(board: Leaderboard) -> str:
    """One line per model; an unbounded bound is ``inf``/``-inf``, no rank is empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in board.models:
        line = row.to_dict()
        line["ci_lower"], line["ci_upper"] = row.ci_lower, row.ci_upper
        line["notes"] = ";".join(row.notes)
        writer.writerow(line)
    return buffer.getvalue()


def rank_text(row: ModelRow) -> str:
    return "prelim." if row.rank_ub is None else str(row.rank_ub)


def interval_text(row: ModelRow) -> str:
    """``+plus/-minus`` around the rating, ∞ for an unbounded side."""
    plus = "∞" if math.isinf(row.ci_upper) else f"{row.ci_upper - row.rating:.1f}"
    minus = "∞" if math.isinf(row.ci_lower) else f"{row.rating - row.ci_lower:.1f}"
    return f"+{plus}/-{minus}"


def notes_text(row: ModelRow) -> str:
    parts = [NOTE_TEXT.get(n, n) for n in row.notes]
    if row.preliminary:
        parts.insert(0, "preliminary")
    return "; ".join(parts)


def _optional_columns(board: Leaderboard) -> tuple[bool, bool, bool]:
    """Which optional columns the board has: part, Elo, votes needed."""
    return (
        board.meta.get("counts", {}).get("parts", 1) > 1 or any(r.part > 1 for r in board.models),
        any(r.elo is not None for r in board.models),
        any(r.votes_needed is not None for r in board.models),
    )


def _elo_text(row: ModelRow) -> str:
    if row.elo is None:
        return ""
    if row.elo_lower is None or row.elo_upper is None:
        return f"{row.elo:.1f}"
    return f"{row.elo:.1f} (+{row.elo_upper - row.elo:.1f}/-{row.elo - row.elo_lower:.1f})"


def _md_cell(text: str) -> str:
    # A pipe or a line break would end the cell; escape them so any model name is safe.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _confidence_label(board: Leaderboard) -> str:
    method = board.meta.get("method", {})
    label = f"{100 * float(method.get('confidence', 0.95)):g}% CI"
    if method.get("simultaneous"):
        label += f" ({method['simultaneous']}, simultaneous)"
    return label


def to_markdown(board: Leaderboard) -> str:
    title = category_label(board.category) + (" (style control)" if board.style_control else "")
    with_part, with_elo, with_needed = _optional_columns(board)
    head = ["Rank (UB)", "Model", "Rating", _confidence_label(board), "Votes"]
    head += ["Part"] * with_part + ["Elo"] * with_elo + ["Votes needed"] * with_needed
    head.append("Notes")
    lines = [
        f"### {_md_cell(title)}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" if h in ("Model", "Notes") else "---:" for h in head) + "|",
    ]
    for row in board.models:
        cells = [
            rank_text(row),
            _md_cell(row.model),
            f"{row.rating:.1f}",
            interval_text(row),
            str(row.num_battles),
        ]
        cells += [str(row.part)] * with_part + [_elo_text(row)] * with_elo
        if with_needed:
            cells.append("" if row.votes_needed is None else str(row.votes_needed))
        cells.append(_md_cell(notes_text(row)))
        lines.append("| " + " | ".join(cells) + " |")
    warnings = board.meta.get("warnings") or []
    if warnings:
        lines += [""] + [f"> **Warning:** {_md_cell(str(w))}" for w in warnings]
    if board.style_coefficients:
        lines += ["", "| Style feature | Coefficient |", "|---|---:|"]
        for name, coef in board.style_coefficients.items():
            lines.append(f"| {_md_cell(name)} | {coef['value']:.4f} |")
    return "\n".join(lines) + "\n"


def to_rich_table(board: Leaderboard) -> Table:
    from rich.markup import escape
    from rich.table import Table

    title = category_label(board.category) + (" · style control" if board.style_control else "")
    meta = board.meta
    method = meta.get("method", {})
    caption = (
        f"{meta.get('counts', {}).get('battles_rated', '?')} battles · "
        f"{method.get('model', 'bradley_terry')} · {method.get('ci', '?')} intervals · "
        f"snapshot {meta.get('snapshot', '-')}"
    )
    with_part, with_elo, with_needed = _optional_columns(board)
    table = Table(title=escape(title), caption=escape(caption))
    table.add_column("Rank (UB)", justify="right")
    table.add_column("Model", no_wrap=True)
    table.add_column("Rating", justify="right")
    table.add_column(_confidence_label(board), justify="right")
    table.add_column("Votes", justify="right")
    table.add_column("Win rate", justify="right")
    if with_part:
        table.add_column("Part", justify="right")
    if with_elo:
        table.add_column("Elo", justify="right")
    if with_needed:
        table.add_column("Votes needed", justify="right")
    table.add_column("Notes", overflow="fold")
    for row in board.models:
        cells = [
            rank_text(row),
            escape(row.model),
            f"{row.rating:.1f}",
            interval_text(row),
            str(row.num_battles),
            f"{100 * row.win_rate:.1f}%",
        ]
        cells += [str(row.part)] * with_part + [_elo_text(row)] * with_elo
        if with_needed:
            cells.append("" if row.votes_needed is None else str(row.votes_needed))
        cells.append(escape(notes_text(row)))
        table.add_row(*cells)
    return table


def render(board: Leaderboard, fmt: str) -> str:
    """Text in one of ``FORMATS``; ``table`` renders the Rich table without colour."""
    if fmt == "json":
        return to_json(board)
    if fmt == "csv":
        return to_csv(board)
    if fmt == "markdown":
        return to_markdown(board)
    if fmt == "table":
        from rich.console import Console

        console = Console(file=io.StringIO(), width=120, color_system=None)
        console.print(to_rich_table(board))
        return console.file.getvalue()
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
