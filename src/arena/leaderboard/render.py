"""A ``Leaderboard`` as text: a Rich table, JSON, CSV or a Markdown table."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

from arena.leaderboard.filters import category_label
from arena.leaderboard.table import Leaderboard

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
)


def to_json(board: Leaderboard) -> str:
    return json.dumps(board.to_dict(), indent=2, ensure_ascii=False) + "\n"


def to_csv(board: Leaderboard) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for row in board.models:
        writer.writerow(row.to_dict())
    return buffer.getvalue()


def _md_cell(text: str) -> str:
    # A pipe or a line break would end the cell; escape them so any model name is safe.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(board: Leaderboard) -> str:
    title = category_label(board.category) + (" (style control)" if board.style_control else "")
    lines = [
        f"### {_md_cell(title)}",
        "",
        "| Rank (UB) | Model | Rating | 95% CI | Votes |",
        "|---:|---|---:|---:|---:|",
    ]
    for row in board.models:
        minus, plus = row.rating - row.ci_lower, row.ci_upper - row.rating
        lines.append(
            f"| {row.rank_ub} | {_md_cell(row.model)} | {row.rating:.1f} "
            f"| +{plus:.1f}/-{minus:.1f} | {row.num_battles} |"
        )
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
    caption = (
        f"{meta.get('counts', {}).get('battles_rated', '?')} battles · "
        f"{meta.get('method', {}).get('ci', '?')} intervals · snapshot {meta.get('snapshot', '-')}"
    )
    table = Table(title=escape(title), caption=escape(caption))
    table.add_column("Rank (UB)", justify="right")
    table.add_column("Model", overflow="fold")
    table.add_column("Rating", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("Votes", justify="right")
    table.add_column("Win rate", justify="right")
    for row in board.models:
        table.add_row(
            str(row.rank_ub),
            escape(row.model),
            f"{row.rating:.1f}",
            f"+{row.ci_upper - row.rating:.1f}/-{row.rating - row.ci_lower:.1f}",
            str(row.num_battles),
            f"{100 * row.win_rate:.1f}%",
        )
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
