"""The whole run: load battles → filter → rate each (category, style control) → artifacts.

``build_leaderboards`` is what the CLI and a live arena call; ``refresh_artifacts`` is the
one-call hook a server uses to recompute the artifacts its leaderboard page reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.errors import BadRequest
from arena.leaderboard.artifacts import ArtifactSet, write_artifact_set
from arena.leaderboard.battle_table import LoadedBattles, is_database_url, load_battles
from arena.leaderboard.compute import (
    RATING_COLUMNS,
    RatingSettings,
    compute_leaderboard,
    settings_digest,
)
from arena.leaderboard.filters import (
    BattleFilters,
    apply_base_filters,
    available_categories,
    canonical_category,
    select_battles,
)
from arena.leaderboard.table import Leaderboard

if TYPE_CHECKING:
    import polars as pl

# Step callback: (description of the job about to run, jobs done, jobs in all).
StepCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BuildResult:
    snapshot: str
    boards: tuple[Leaderboard, ...]
    meta: dict[str, Any]


def describe_source(source: str | Path) -> str:
    """The source as it may be shown and stored: database passwords are hidden."""
    text = str(source)
    if is_database_url(text):
        from sqlalchemy.engine import make_url

        return make_url(text).render_as_string(hide_password=True)
    return Path(text).name


def resolve_categories(
    loaded: LoadedBattles,
    filters: BattleFilters,
    requested: Sequence[str] | None,
    *,
    min_category_battles: int = 30,
) -> list[str]:
    """The categories to rate: the requested ones, or "all" that hold enough battles."""
    if requested and not (len(requested) == 1 and requested[0].lower() == "all"):
        return list(dict.fromkeys(canonical_category(c) for c in requested))
    base = apply_base_filters(loaded.frame, filters).frame
    found = available_categories(base, min_battles=max(1, min_category_battles))
    return ["full", *[c for c in found if c != "full"]]


def build_leaderboards(
    loaded: LoadedBattles,
    *,
    filters: BattleFilters,
    settings: RatingSettings,
    categories: Sequence[str] = ("full",),
    style_modes: Iterable[bool] = (False,),
    on_step: StepCallback | None = None,
    skip_empty: bool = False,
    with_timeline: bool = False,
) -> BuildResult:
    """Rate every (category, style control) pair; empty categories raise unless skipped.
    ``with_timeline`` adds ratings over time to the plain overall board (a few extra fits:
    what the web page's chart draws)."""
    snapshot = settings_digest(loaded.data_sha256, filters, settings)
    shared = {
        "snapshot": snapshot,
        "data_sha256": loaded.data_sha256,
        "source": describe_source(loaded.source),
        "filters": filters.to_dict(),
    }
    jobs = [(canonical_category(c), s) for c in categories for s in style_modes]
    boards = []
    for done, (category, style) in enumerate(jobs):
        label = f"{category}{' · style control' if style else ''}"
        if on_step:
            on_step(label, done, len(jobs))
        selected = select_battles(loaded.frame, filters, category, columns=RATING_COLUMNS)
        if selected.frame.height == 0:
            if skip_empty and category != "full":
                continue
            raise BadRequest(
                f"no battles left for category {category!r} after filtering ({selected.counts()})",
                param="category",
            )
        try:
            board = compute_leaderboard(
                selected.frame,
                category=category,
                style_control=style,
                settings=settings,
                meta={**shared, "counts": selected.counts()},
            )
        except BadRequest:
            # A category too small to rate, or style control without varying features:
            # the other boards are still worth publishing.
            if skip_empty and (category != "full" or style):
                continue
            raise
        if with_timeline and category == "full" and not style:
            board = with_board_timeline(board, selected.frame, settings)
        boards.append(board)
    if on_step:
        on_step("done", len(jobs), len(jobs))
    return BuildResult(snapshot, tuple(boards), shared)


def refresh_artifacts(
    source: str | Path,
    artifacts_dir: Path,
    *,
    filters: BattleFilters | None = None,
    settings: RatingSettings | None = None,
    categories: Sequence[str] | None = None,
    style_modes: Iterable[bool] = (False, True),
    min_category_battles: int = 30,
    keep: int | None = 10,
) -> ArtifactSet:
    """Recompute every leaderboard from ``source`` (a file or database URL) and write a new
    artifact set; a web page reading ``load_latest`` shows it on its next request."""
    filters = filters or BattleFilters()
    settings = settings or RatingSettings()
    loaded = load_battles(source)
    chosen = resolve_categories(
        loaded, filters, categories, min_category_battles=min_category_battles
    )
    result = build_leaderboards(
        loaded,
        filters=filters,
        settings=settings,
        categories=chosen,
        style_modes=tuple(style_modes),
        skip_empty=True,
        with_timeline=True,
    )
    return write_artifact_set(
        artifacts_dir, result.boards, snapshot=result.snapshot, meta=result.meta, keep=keep
    )


def with_board_timeline(
    board: Leaderboard, frame: pl.DataFrame, settings: RatingSettings
) -> Leaderboard:
    """The board with ``meta["timeline"]``: {"times": [ISO dates], "ratings": {model:
    [rating or null]}} from cumulative refits (none when battles carry no timestamps)."""
    import math
    from dataclasses import replace

    from arena.leaderboard.plots import compute_timeline

    timeline = compute_timeline(frame, board, settings)
    if timeline is None:
        return board
    data = {
        "times": [t.isoformat() for t in timeline.times],
        "ratings": {
            model: [None if math.isnan(v) else round(float(v), 2) for v in values]
            for model, values in timeline.ratings.items()
        },
    }
    return replace(board, meta={**board.meta, "timeline": data})
