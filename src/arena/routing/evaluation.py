"""How good is a router: quality against the share of strong-model calls.

Sorting prompts by the router's strong-win rate and sending the top ones to the strong model
traces a curve from the weak model's quality (no strong calls) to the strong model's (all
calls). Prompts with equal rates move together, as one threshold would move them.

- PGR (performance gap recovered) at a point: (quality − weak) / (strong − weak).
- APGR: the area under PGR over the strong share in [0, 1] (trapezoids); a random router has
  0.5 in expectation.
- CPT(x): the least strong share whose PGR reaches x (linear between points), e.g. CPT(50%).

Calibration picks the threshold that sends a target share of a sample to the strong model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arena.routing.errors import RoutingError


@dataclass(frozen=True)
class Curve:
    """Points of quality against strong share, with the two models' own qualities."""

    share: np.ndarray
    quality: np.ndarray
    thresholds: np.ndarray
    strong_quality: float
    weak_quality: float

    @property
    def pgr(self) -> np.ndarray:
        gap = self.strong_quality - self.weak_quality
        if gap == 0:
            raise RoutingError("the strong and weak models score the same: no gap to recover")
        return (self.quality - self.weak_quality) / gap


def routing_curve(
    scores: np.ndarray, strong_quality: np.ndarray, weak_quality: np.ndarray
) -> Curve:
    """The curve of routing the highest-scored prompts to the strong model, at every
    threshold that changes a decision."""
    scores = np.asarray(scores, dtype=float)
    s_q = np.asarray(strong_quality, dtype=float)
    w_q = np.asarray(weak_quality, dtype=float)
    n = len(scores)
    if n == 0 or len(s_q) != n or len(w_q) != n:
        raise RoutingError("scores and qualities must be non-empty and of one length")
    order = np.argsort(-scores, kind="stable")
    gain = np.cumsum((s_q - w_q)[order])
    sorted_scores = scores[order]
    # the last index of each run of equal scores: a threshold there routes the whole run
    ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    counts = ends + 1
    base = w_q.sum()
    share = np.r_[0.0, counts / n]
    quality = np.r_[base, base + gain[ends]] / n
    thresholds = np.r_[np.inf, sorted_scores[ends]]
    return Curve(share, quality, thresholds, float(s_q.mean()), float(w_q.mean()))


def apgr(curve: Curve) -> float:
    """Average performance gap recovered: ∫₀¹ PGR d(share)."""
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 lacks trapezoid
    return float(trapezoid(curve.pgr, curve.share))


def cpt(curve: Curve, target: float) -> float:
    """Least strong share at which PGR reaches ``target`` (linear between curve points)."""
    pgr, share = curve.pgr, curve.share
    hit = np.flatnonzero(pgr >= target - 1e-12)
    if len(hit) == 0:
        return float("nan")
    i = int(hit[0])
    if i == 0:
        return float(share[0])
    p0, p1 = pgr[i - 1], pgr[i]
    frac = (target - p0) / (p1 - p0)
    return float(share[i - 1] + frac * (share[i] - share[i - 1]))


def calibrate_threshold(scores: np.ndarray, strong_share: float) -> float:
    """The threshold sending ``strong_share`` of these prompts to the strong model (routing
    sends rate ≥ threshold there); ties can make the share land near, not on, the target."""
    if not 0.0 <= strong_share <= 1.0:
        raise RoutingError("the strong share must be between 0 and 1")
    scores = np.sort(np.asarray(scores, dtype=float))[::-1]
    if len(scores) == 0:
        raise RoutingError("no prompts to calibrate on")
    k = round(strong_share * len(scores))
    if k == 0:
        return float(np.nextafter(scores[0], np.inf))
    return float(scores[k - 1])


@dataclass(frozen=True)
class Summary:
    router: str
    apgr: float
    cpt50: float
    cpt80: float
    n: int


def summarize(name: str, curve: Curve) -> Summary:
    return Summary(name, apgr(curve), cpt(curve, 0.5), cpt(curve, 0.8), len(curve.share) - 1)


def plot_curves(
    curves: dict[str, Curve], path: str | Path, *, title: str, strong: str, weak: str
) -> Path:
    """Quality against strong-call share, one line per router, the two models dashed (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    first = next(iter(curves.values()))
    for name, curve in curves.items():
        style = {"color": "black", "linestyle": ":"} if name == "random" else {}
        ax.plot(100 * curve.share, curve.quality, label=name, linewidth=1.5, **style)
    ax.axhline(first.strong_quality, color="tab:red", linestyle="--", label=strong)
    ax.axhline(first.weak_quality, color="grey", linestyle="--", label=weak)
    ax.set_xlabel("strong-model calls (%)")
    ax.set_ylabel("quality")
    ax.set_title(title)
    ax.set_xlim(0, 100)
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
