"""The work behind ``arena route eval``: score a benchmark's prompts with several routers, on
the prompts none of them was trained on, and summarise each curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arena.routing.benchmarks import BenchmarkTable
from arena.routing.errors import RoutingError
from arena.routing.evaluation import Curve, routing_curve, summarize
from arena.routing.persistence import training_prompts
from arena.routing.router import Router


def busy(message: str) -> Any:
    """A spinner on stderr while slow work runs, only on a terminal (never in piped JSON)."""
    import contextlib

    from rich.console import Console

    console = Console(stderr=True)
    return console.status(message) if console.is_terminal else contextlib.nullcontext()


def evaluate_routers(
    table: BenchmarkTable, routers: dict[str, Router]
) -> tuple[dict[str, Any], dict[str, Curve]]:
    """JSON-able results and the curves, over prompts outside every router's training set."""
    seen: set[str] = set()
    for name in routers:
        if name != "random" and Path(name).is_dir():
            seen.update(training_prompts(name))
    keep = [p not in seen for p in table.prompts]
    held = table.subset(keep)
    if not held.prompts:
        raise RoutingError("every benchmark prompt was used to train a router: nothing held out")
    curves: dict[str, Curve] = {}
    results = []
    for name, router in routers.items():
        with busy(f"scoring {len(held.prompts)} prompts with {name}"):
            rates = router.strong_win_rate(list(held.prompts))
        curve = routing_curve(rates, held.strong_quality, held.weak_quality)
        curves[name] = curve
        s = summarize(name, curve)
        results.append(
            {
                "router": name,
                "kind": router.kind,
                "apgr": s.apgr,
                "cpt50": s.cpt50,
                "cpt80": s.cpt80,
                "curve": {"share": curve.share.tolist(), "quality": curve.quality.tolist()},
            }
        )
    payload = {
        "benchmark": table.name,
        "prompts": len(held.prompts),
        "total_rows": table.total,
        "excluded_contaminated": table.excluded,
        "excluded_training": len(table.prompts) - len(held.prompts),
        "strong": {"model": table.strong, "quality": float(held.strong_quality.mean())},
        "weak": {"model": table.weak, "quality": float(held.weak_quality.mean())},
        "routers": results,
    }
    return payload, curves


def results_table(payload: dict[str, Any]) -> Any:
    from rich.table import Table

    def pct(x: float) -> str:
        return "–" if x != x else f"{100 * x:.1f}%"

    title = (
        f"{payload['benchmark']}: {payload['prompts']} prompts "
        f"({payload['excluded_contaminated']} contaminated and "
        f"{payload['excluded_training']} training prompts left out); "
        f"{payload['strong']['model']} {payload['strong']['quality']:.3f}, "
        f"{payload['weak']['model']} {payload['weak']['quality']:.3f}"
    )
    table = Table(title=title)
    for col in ("router", "kind", "APGR", "CPT(50%)", "CPT(80%)"):
        table.add_column(col, justify="left" if col in ("router", "kind") else "right")
    for r in sorted(payload["routers"], key=lambda r: -r["apgr"]):
        table.add_row(r["router"], r["kind"], f"{r['apgr']:.3f}", pct(r["cpt50"]), pct(r["cpt80"]))
    return table
