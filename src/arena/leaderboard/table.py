"""The leaderboard result: one row per model, style coefficients and provenance.

Small frozen dataclasses with a JSON-shaped round trip (``to_dict``/``from_dict``), shared by
the CLI output, the artifacts and the web page. No rating math lives here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

NOTE_TEXT = {
    "never_lost": "never lost: no upper bound",
    "never_won": "never won: no lower bound",
    "all_ties": "only ties: model-based interval",
}
"""Row notes: what the battles cannot say about a model (see ``arena.ratings.evidence``)."""


def _bound(value: float) -> float | None:
    """JSON has no infinity: an unbounded side is written as null."""
    return None if math.isinf(value) else value


@dataclass(frozen=True)
class ModelRow:
    """One model's line. ``rank_ub`` is None for a preliminary model (too few battles to be
    ranked); ranks count within the model's ``part`` of the comparison graph (1 = largest);
    an unbounded interval side is ±inf (null in JSON)."""

    model: str
    rating: float
    ci_lower: float
    ci_upper: float
    rank_ub: int | None
    num_battles: int
    wins: int = 0
    losses: int = 0
    ties: int = 0
    preliminary: bool = False
    part: int = 1
    notes: tuple[str, ...] = ()
    elo: float | None = None
    elo_lower: float | None = None
    elo_upper: float | None = None
    votes_needed: int | None = None

    @property
    def win_rate(self) -> float:
        """Wins plus half the ties over all battles."""
        return (self.wins + 0.5 * self.ties) / self.num_battles if self.num_battles else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci_lower"], out["ci_upper"] = _bound(self.ci_lower), _bound(self.ci_upper)
        out["notes"] = list(self.notes)
        out["win_rate"] = self.win_rate
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelRow:
        def optional(key: str, kind=float):
            value = data.get(key)
            return None if value is None else kind(value)

        lower, upper = data.get("ci_lower"), data.get("ci_upper")
        return cls(
            model=str(data["model"]),
            rating=float(data["rating"]),
            ci_lower=-math.inf if lower is None else float(lower),
            ci_upper=math.inf if upper is None else float(upper),
            rank_ub=optional("rank_ub", int),
            num_battles=int(data["num_battles"]),
            wins=int(data.get("wins", 0)),
            losses=int(data.get("losses", 0)),
            ties=int(data.get("ties", 0)),
            preliminary=bool(data.get("preliminary", False)),
            part=int(data.get("part", 1)),
            notes=tuple(str(n) for n in data.get("notes") or ()),
            elo=optional("elo"),
            elo_lower=optional("elo_lower"),
            elo_upper=optional("elo_upper"),
            votes_needed=optional("votes_needed", int),
        )


@dataclass(frozen=True)
class Leaderboard:
    """Ratings of one (category, style control) pair, sorted by rating, best first."""

    category: str
    style_control: bool
    models: tuple[ModelRow, ...]
    style_coefficients: dict[str, dict[str, float]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    # The ratings' covariance and the battles per pair, for active pair sampling:
    # {"models": [...], "covariance": [[...]], "battle_counts": [[...]]} (plain boards).
    uncertainty: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "category": self.category,
            "style_control": self.style_control,
            "models": [m.to_dict() for m in self.models],
            "style_coefficients": self.style_coefficients,
            "meta": self.meta,
        }
        if self.uncertainty is not None:
            out["uncertainty"] = self.uncertainty
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Leaderboard:
        return cls(
            category=str(data.get("category", data.get("meta", {}).get("category", "full"))),
            style_control=bool(
                data.get("style_control", data.get("meta", {}).get("style_control", False))
            ),
            models=tuple(ModelRow.from_dict(m) for m in data["models"]),
            style_coefficients={
                k: {kk: float(vv) for kk, vv in v.items()}
                for k, v in (data.get("style_coefficients") or {}).items()
            },
            meta=dict(data.get("meta") or {}),
            uncertainty=data.get("uncertainty"),
        )
