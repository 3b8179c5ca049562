"""Which battles count: base filters (anonymous, dedup, leaks, dates, models, ties),
categories (hard prompts, coding, math, ...; one per language) and the minimum-votes rule.

Every step is a pure function of the normalized table (see ``battle_table``) and reports
how many battles remain, so results can say exactly what was rated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from arena.errors import BadRequest

if TYPE_CHECKING:
    import polars as pl

# Category name → (column that must be true, human label).
FLAG_CATEGORIES: dict[str, tuple[str | None, str]] = {
    "full": (None, "Overall"),
    "hard_prompts": ("is_hard", "Hard prompts"),
    "coding": ("is_code", "Coding"),
    "math": ("is_math", "Math"),
    "instruction_following": ("is_instruction_following", "Instruction following"),
    "creative_writing": ("is_creative_writing", "Creative writing"),
    "multi_turn": ("is_multi_turn", "Multi-turn"),
    "long_query": ("is_long_query", "Long query"),
}
ALIASES = {
    "overall": "full",
    "all": "full",
    "hard": "hard_prompts",
    "code": "coding",
    "if": "instruction_following",
    "creative": "creative_writing",
    "multiturn": "multi_turn",
    "long": "long_query",
}
LANGUAGE_PREFIX = "language:"


@dataclass(frozen=True)
class BattleFilters:
    """Settings that decide which battles are rated (category aside)."""

    anony_only: bool = True
    dedup_sampled_only: bool = False
    include_leaked: bool = False
    since: datetime | None = None
    until: datetime | None = None
    exclude_models: tuple[str, ...] = ()
    exclude_ties: bool = False
    min_votes: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = self.since.isoformat() if self.since else None
        out["until"] = self.until.isoformat() if self.until else None
        out["exclude_models"] = sorted(self.exclude_models)
        return out


@dataclass(frozen=True)
class FilterStep:
    name: str
    remaining: int


@dataclass(frozen=True)
class FilteredBattles:
    frame: pl.DataFrame
    steps: tuple[FilterStep, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        return {s.name: s.remaining for s in self.steps}


def parse_date(text: str | None) -> datetime | None:
    """An ISO date or datetime (UTC when no zone is given); None passes through."""
    if text is None or text == "":
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError as e:
            raise BadRequest(f"not an ISO date: {text!r}", param="date") from e
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def canonical_category(name: str) -> str:
    """Resolve aliases and validate the name; language categories keep the given spelling."""
    key = name.strip()
    lowered = key.lower()
    if lowered.startswith(LANGUAGE_PREFIX):
        language = key[len(LANGUAGE_PREFIX) :].strip()
        if not language:
            raise BadRequest("language category needs a language, e.g. language:English")
        return LANGUAGE_PREFIX + language
    lowered = ALIASES.get(lowered, lowered)
    if lowered not in FLAG_CATEGORIES:
        known = ", ".join([*FLAG_CATEGORIES, LANGUAGE_PREFIX + "<name>"])
        raise BadRequest(f"unknown category {name!r}; known: {known}", param="category")
    return lowered


def category_label(name: str) -> str:
    if name.startswith(LANGUAGE_PREFIX):
        return name[len(LANGUAGE_PREFIX) :]
    return FLAG_CATEGORIES.get(name, (None, name))[1]


def category_expr(name: str) -> pl.Expr:
    """Boolean expression selecting a category's battles."""
    import polars as pl

    name = canonical_category(name)
    if name.startswith(LANGUAGE_PREFIX):
        language = name[len(LANGUAGE_PREFIX) :].lower()
        return pl.col("language").str.to_lowercase() == language
    column = FLAG_CATEGORIES[name][0]
    return pl.lit(True) if column is None else pl.col(column)


def languages(frame: pl.DataFrame, *, min_battles: int = 1) -> list[str]:
    """Languages present with at least ``min_battles`` battles, most battles first."""
    import polars as pl

    counts = (
        frame.filter(pl.col("language") != "unknown")
        .group_by("language")
        .len()
        .filter(pl.col("len") >= min_battles)
        .sort(["len", "language"], descending=[True, False])
    )
    return counts["language"].to_list()


def available_categories(frame: pl.DataFrame, *, min_battles: int = 1) -> list[str]:
    """Flag categories and language categories holding at least ``min_battles`` battles."""
    out = []
    for name in FLAG_CATEGORIES:
        if frame.filter(category_expr(name)).height >= min_battles:
            out.append(name)
    out.extend(LANGUAGE_PREFIX + lang for lang in languages(frame, min_battles=min_battles))
    return out


def base_conditions(filters: BattleFilters) -> list[tuple[str, pl.Expr]]:
    """The base filters as (step name, condition), in the order they apply."""
    import polars as pl

    steps = [("distinct_models", pl.col("model_a") != pl.col("model_b"))]
    if not filters.include_leaked:
        steps.append(("not_leaked", ~pl.col("leaked")))
    if filters.anony_only:
        steps.append(("anonymous", pl.col("anony")))
    if filters.dedup_sampled_only:
        steps.append(("dedup_sampled", pl.col("dedup_sampled")))
    if filters.since is not None:
        steps.append(("since", pl.col("tstamp") >= filters.since.timestamp()))
    if filters.until is not None:
        steps.append(("until", pl.col("tstamp") < filters.until.timestamp()))
    if filters.exclude_models:
        excluded = list(filters.exclude_models)
        steps.append(
            (
                "exclude_models",
                ~pl.col("model_a").is_in(excluded) & ~pl.col("model_b").is_in(excluded),
            )
        )
    if filters.exclude_ties:
        steps.append(("exclude_ties", ~pl.col("winner").str.starts_with("tie")))
    return steps


def _filter_in_one_pass(
    frame: pl.DataFrame,
    conditions: list[tuple[str, pl.Expr]],
    columns: Sequence[str] | None,
) -> FilteredBattles:
    """Apply the conditions in order, counting what each leaves, with one copy of the rows
    kept (and of ``columns`` only, when given): millions of battles are not copied per step."""
    import polars as pl

    steps = [FilterStep("input", frame.height)]
    if not conditions:
        kept = frame if columns is None else frame.select(columns)
        return FilteredBattles(kept, tuple(steps))
    flags = frame.select(
        [cond.fill_null(False).alias(f"step{i}") for i, (_, cond) in enumerate(conditions)]
    )
    cumulative = flags.select(
        pl.all_horizontal(flags.columns[: i + 1]).alias(f"upto{i}") for i in range(len(conditions))
    )
    counts = cumulative.sum().row(0)
    steps += [FilterStep(name, int(n)) for (name, _), n in zip(conditions, counts, strict=True)]
    source = frame if columns is None else frame.select(columns)
    return FilteredBattles(source.filter(cumulative[f"upto{len(conditions) - 1}"]), tuple(steps))


def apply_base_filters(
    frame: pl.DataFrame, filters: BattleFilters, *, columns: Sequence[str] | None = None
) -> FilteredBattles:
    """Anonymous/dedup/leak/date/model/tie filters, in that order, with counts."""
    return _filter_in_one_pass(frame, base_conditions(filters), columns)


def apply_min_votes(frame: pl.DataFrame, min_votes: int) -> pl.DataFrame:
    """Drop battles involving a model with fewer than ``min_votes`` battles (one pass)."""
    import polars as pl

    if min_votes <= 0 or frame.height == 0:
        return frame
    counts = pl.concat([frame["model_a"], frame["model_b"]]).value_counts()
    keep = counts.filter(pl.col("count") >= min_votes).get_column(counts.columns[0]).to_list()
    return frame.filter(pl.col("model_a").is_in(keep) & pl.col("model_b").is_in(keep))


def select_battles(
    frame: pl.DataFrame,
    filters: BattleFilters,
    category: str = "full",
    *,
    columns: Sequence[str] | None = None,
) -> FilteredBattles:
    """Base filters, then the category, then minimum votes; counts for every step.
    ``columns`` keeps only those columns of the selected battles (a fit needs a few)."""
    name = canonical_category(category)
    conditions = [*base_conditions(filters), (f"category:{name}", category_expr(name))]
    selected = _filter_in_one_pass(frame, conditions, columns)
    rated = apply_min_votes(selected.frame, filters.min_votes)
    steps = list(selected.steps)
    if filters.min_votes > 0:
        steps.append(FilterStep("min_votes", rated.height))
    return FilteredBattles(rated, tuple(steps))
