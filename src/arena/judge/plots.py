"""The MT-Bench radar plot: one polygon per model over the question categories (PNG)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def radar_plot(
    category_scores: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    title: str = "MT-Bench scores by category",
    max_score: float = 10.0,
) -> Path:
    """Write a radar chart of ``{model: {category: score}}`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    categories = sorted({c for scores in category_scores.values() for c in scores})
    if len(categories) < 3:
        raise ValueError("a radar plot needs at least three categories")
    angles = np.linspace(0, 2 * np.pi, len(categories), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(7, 7), subplot_kw={"projection": "polar"})
    for model, scores in category_scores.items():
        values = [scores.get(c, 0.0) for c in categories]
        ax.plot([*angles, angles[0]], [*values, values[0]], linewidth=1.5, label=model)
        ax.fill([*angles, angles[0]], [*values, values[0]], alpha=0.1)
    ax.set_xticks(angles)
    ax.set_xticklabels(categories)
    ax.set_ylim(0, max_score)
    ax.set_title(title)
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
