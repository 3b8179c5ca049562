"""Coverage of nominal 95% rating intervals on battles simulated from known true ratings.

Estimand: the true rating of each model relative to the models' mean, on the display
scale, r_i = 1000 + (400/ln 10)·(θ_i - mean θ). Every fit here centres its ratings at 1000,
so an interval [lower_i, upper_i] covers when lower_i ≤ r_i ≤ upper_i. The true strengths
θ (and the style profile of each model) are drawn once and kept; every repetition draws
new battles. Coverage is reported per model (share of repetitions) and averaged over
models.

Scenarios (20 models, 15,000 battles, uniform random pairs):

- ``ties``: Davidson outcomes, P(a) : P(b) : P(tie) = e^{d/2} : e^{-d/2} : ν with ν = 1
  (about 30% ties). Plain Bradley–Terry with ties as half wins and with Davidson ties,
  bootstrap and sandwich intervals. Ties as half wins estimate a different quantity (the
  Bradley–Terry strengths that best fit "wins plus half the ties", about 2/(2 + ν) of
  the Davidson differences near zero); their coverage of that target, computed from the
  exact outcome probabilities, is reported too.
- ``style``: decisive outcomes with P(a) = σ(θ_a - θ_b + xᵀγ), four per-side style
  features (answer length and markdown counts, each model with its own mean), x the
  "reference" normalization. Style control (bootstrap and sandwich) and, for contrast,
  plain Bradley–Terry, which credits the style effects to the models.
- ``style_ties``: the same with Davidson ties (ν = 1) on top: style control with Davidson
  ties and with ties as half wins.
- arena-rank (when ``import arena_rank`` works): its Bradley–Terry (ties as half wins) on
  the ``ties`` data and its contextual Bradley–Terry (its defaults: inverse-propensity
  weights, ``reg=1``) on the ``style`` data, sandwich intervals on every repetition;
  bootstrap intervals (slow: JAX compiles each round's fit) on the first
  ``--arena-rank-bootstrap-reps`` repetitions only.

    python benchmarks/coverage.py                       # the recorded run (minutes)
    python benchmarks/coverage.py --reps 20 --no-arena-rank   # quick look
"""

from __future__ import annotations

import argparse
import datetime
import math
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ALPHA = 400 / math.log(10)
N_MODELS, N_BATTLES, NU = 20, 15_000, 1.0
GAMMA = np.array([0.3, 0.08, 0.05, 0.07])
FEATURES = ["tokens", "headers", "lists", "bold"]
WINNERS = np.array(["model_a", "model_b", "tie"])


# ---------------------------------------------------------------- truth and data
def truth(seed: int = 2026) -> dict:
    """True strengths and each model's style profile, fixed for every repetition."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.5, N_MODELS)
    return {
        "theta": theta,
        "mean_len": rng.uniform(150, 1200, N_MODELS),
        "mean_md": rng.uniform(0.2, 8, (N_MODELS, 3)),
        "ratings": 1000 + ALPHA * (theta - theta.mean()),
    }


def simulate(kind: str, true: dict, seed: int) -> dict:
    """One repetition's battles: names, winners and (for the style scenarios) features."""
    from arena.ratings.bradley_terry import davidson_probs

    rng = np.random.default_rng(seed)
    a = rng.integers(0, N_MODELS, N_BATTLES)
    b = (a + rng.integers(1, N_MODELS, N_BATTLES)) % N_MODELS
    d = true["theta"][a] - true["theta"][b]
    out = {}
    if kind != "ties":
        fa = side_features(rng, true, a)
        fb = side_features(rng, true, b)
        total = fa + fb
        raw = (fa - fb) / np.where(total == 0, 1.0, total)
        d = d + (raw - raw.mean(axis=0)) / raw.std(axis=0) @ GAMMA
        out.update(features_a=fa, features_b=fb)
    if kind == "style":
        code = np.where(rng.random(N_BATTLES) < 1 / (1 + np.exp(-d)), 0, 1)
    else:
        pa, pb, _ = davidson_probs(d, math.log(NU))
        u = rng.random(N_BATTLES)
        code = np.where(u < pa, 0, np.where(u < pa + pb, 1, 2))
    names = np.array([f"model-{i:02d}" for i in range(N_MODELS)])
    out.update(model_a=names[a], model_b=names[b], winner=WINNERS[code])
    return out


def side_features(rng, true: dict, m: np.ndarray) -> np.ndarray:
    counts = [rng.poisson(true["mean_len"][m])]
    counts += [rng.poisson(true["mean_md"][m, c]) for c in range(3)]
    return np.column_stack(counts).astype(float)


def half_win_target(true: dict) -> np.ndarray:
    """Ratings that Bradley–Terry with ties as half wins converges to on Davidson data:
    its fit to the exact probabilities of every pair (all pairs equally likely)."""
    from arena.ratings.bradley_terry import _newton, davidson_probs, half_objective

    i, j = np.triu_indices(N_MODELS, 1)
    pa, _, pt = davidson_probs(true["theta"][i] - true["theta"][j], math.log(NU))
    func = half_objective(N_MODELS, i, j, np.ones(len(i)), pa + 0.5 * pt, 0.0)
    fix = np.full((N_MODELS, N_MODELS), 1.0 / N_MODELS)
    theta = _newton(func, np.zeros(N_MODELS), fix)[0]
    return 1000 + ALPHA * (theta - theta.mean())


# ---------------------------------------------------------------- methods
def arena_methods(kind: str, data: dict, rounds: int) -> dict:
    """Intervals (lower, upper) from the rating engine, by method name."""
    from arena.ratings import (
        Battles,
        bootstrap_intervals,
        fit_style_control,
        sandwich_intervals,
    )

    features = {}
    if kind != "ties":
        features = dict(
            features_a=data["features_a"], features_b=data["features_b"], feature_names=FEATURES
        )
    battles = Battles.from_columns(data["model_a"], data["model_b"], data["winner"], **features)
    out = {}
    if kind == "ties":
        for ties in ("half", "davidson"):
            boot = bootstrap_intervals(battles, rounds=1000, seed=1, n_jobs=1, ties=ties)
            sand = sandwich_intervals(battles, ties=ties)
            out[f"plain BT, ties {ties}: bootstrap 1000"] = (boot.lower, boot.upper)
            out[f"plain BT, ties {ties}: sandwich"] = (sand.lower, sand.upper)
        return out
    tie_models = ("half",) if kind == "style" else ("davidson", "half")
    for ties in tie_models:
        common = dict(compare_plain=False, n_jobs=1, ties=ties)
        boot = fit_style_control(battles, rounds=rounds, seed=1, **common)
        sand = fit_style_control(battles, ci="sandwich", **common)
        out[f"style control, ties {ties}: bootstrap {rounds}"] = (boot.lower, boot.upper)
        out[f"style control, ties {ties}: sandwich"] = (sand.lower, sand.upper)
    if kind == "style":
        plain = sandwich_intervals(battles)
        out["plain BT (style ignored): sandwich"] = (plain.lower, plain.upper)
    return out


def arena_rank_methods(kind: str, data: dict, ci: str, rounds: int, jobs: int) -> dict:
    """arena-rank's intervals on the same battles (its defaults otherwise)."""
    import pandas as pd
    from arena_rank.models.bradley_terry import BradleyTerry
    from arena_rank.models.contextual_bradley_terry import ContextualBradleyTerry
    from arena_rank.utils.data_utils import ContextualPairDataset, PairDataset

    df = pd.DataFrame({k: data[k] for k in ("model_a", "model_b", "winner")})
    extra = dict(ci_method=ci, num_bootstrap=rounds, n_jobs=jobs)
    if kind == "ties":
        pairs = PairDataset.from_pandas(df)
        model = BradleyTerry(n_competitors=len(pairs.competitors)).fit(pairs)
        res = model.compute_ratings_and_cis(pairs, **extra)
        label = "arena-rank BT (ties half)"
    else:
        for c, name in enumerate(FEATURES):
            fa, fb = data["features_a"][:, c], data["features_b"][:, c]
            total = fa + fb
            df[name] = (fa - fb) / np.where(total == 0, 1.0, total)
        pairs = ContextualPairDataset.from_pandas(df, feature_cols=FEATURES)
        model = ContextualBradleyTerry(n_competitors=len(pairs.competitors), n_features=4)
        res = model.fit(pairs).compute_ratings_and_cis(pairs, **extra)
        label = "arena-rank contextual BT"
    method = f"bootstrap {rounds}" if ci == "bootstrap" else "sandwich"
    return {
        f"{label}: {method}": (np.asarray(res["rating_lower"]), np.asarray(res["rating_upper"]))
    }


def first_seed(kind: str) -> int:
    """Repetition r of a scenario uses seed first_seed + r (the same battles for every method)."""
    return 10_000 * (1 + ["ties", "style", "style_ties"].index(kind))


def one_rep(task: tuple) -> tuple[str, int, dict]:
    kind, rep, rounds, with_arena_rank = task
    true = truth()
    data = simulate(
        kind, true, seed=10_000 * (1 + ["ties", "style", "style_ties"].index(kind)) + rep
    )
    out = arena_methods(kind, data, rounds)
    if with_arena_rank and kind in ("ties", "style"):
        out.update(arena_rank_methods(kind, data, "sandwich", 0, 1))
    return kind, rep, out


# ---------------------------------------------------------------- driver
def summarize(results: dict, true: dict) -> list[dict]:
    """Per scenario and method: coverage (per model and averaged) and mean width."""
    target_half = half_win_target(true)
    rows = []
    for (kind, method), intervals in results.items():
        lower = np.stack([lo for lo, _ in intervals])
        upper = np.stack([hi for _, hi in intervals])
        for label, target in (("true ratings", true["ratings"]), ("half-win target", target_half)):
            if label == "half-win target" and not (kind == "ties" and "ties half" in method):
                continue
            covered = (lower <= target) & (target <= upper)
            per_model = covered.mean(axis=0)
            rows.append(
                dict(
                    scenario=kind,
                    method=method,
                    target=label,
                    reps=len(lower),
                    coverage=float(covered.mean()),
                    low=float(per_model.min()),
                    high=float(per_model.max()),
                    width=float((upper - lower).mean()),
                )
            )
    return rows


def render(rows: list[dict], command: str, seconds: float, notes: list[str]) -> str:
    lines = [
        f"## Coverage ({datetime.date.today().isoformat()})",
        "",
        f"Nominal 95% intervals on simulated battles ({N_MODELS} models, {N_BATTLES:,} battles "
        "per repetition, uniform random pairs); see `benchmarks/coverage.py` for the "
        "scenarios. The estimand is each model's true rating relative to the models' mean, "
        "r_i = 1000 + (400/ln 10)·(θ_i − mean θ); an interval covers when it contains r_i. "
        "Coverage is the share of (model, repetition) intervals that cover; min/max are "
        "over models (each model's share of repetitions). With 20 models × 100 repetitions "
        "the Monte Carlo error of the average is about ±0.01 (±0.04 per model).",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min on {os.cpu_count()} cores).",
        "",
        "| scenario | method | target | reps | coverage | per model min–max | mean width |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['method']} | {r['target']} | {r['reps']} "
            f"| {r['coverage']:.3f} | {r['low']:.2f}–{r['high']:.2f} | {r['width']:.1f} |"
        )
    lines += ["", *notes]
    return "\n".join(lines) + "\n"


def write_section(doc: Path, section: str) -> None:
    """Replace the page's "## Coverage" section (or add it at the end)."""
    text = doc.read_text() if doc.exists() else ""
    start = text.find("\n## Coverage")
    if start < 0:
        doc.write_text(text.rstrip("\n") + "\n\n" + section)
        return
    end = text.find("\n## ", start + 1)
    rest = "" if end < 0 else text[end:]
    doc.write_text(text[:start].rstrip("\n") + "\n\n" + section + rest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=100, help="style-control bootstrap rounds")
    ap.add_argument("--jobs", type=int, default=2, help="processes running repetitions")
    ap.add_argument("--no-arena-rank", action="store_true")
    ap.add_argument("--arena-rank-bootstrap-reps", type=int, default=3)
    ap.add_argument("--doc", type=Path, default=None, help="write the section into this page")
    args = ap.parse_args()
    command = "python " + " ".join([os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    with_arena_rank = not args.no_arena_rank
    if with_arena_rank:
        try:
            import arena_rank  # noqa: F401
        except ImportError:
            with_arena_rank = False
            print("arena_rank is not importable: its rows are left out")
    started = time.perf_counter()
    tasks = [
        (kind, rep, args.rounds, with_arena_rank)
        for rep in range(args.reps)
        for kind in ("ties", "style", "style_ties")
    ]
    results: dict = {}
    # Spawned workers: arena-rank's JAX must not be forked after it has started threads.
    with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn")) as pool:
        for done, (kind, _, out) in enumerate(pool.map(one_rep, tasks, chunksize=2), 1):
            for method, interval in out.items():
                results.setdefault((kind, method), []).append(interval)
            if done % 30 == 0:
                print(f"{done}/{len(tasks)} repetitions, {time.perf_counter() - started:.0f}s")
    notes = []
    if with_arena_rank and args.arena_rank_bootstrap_reps > 0:
        mp.set_start_method("spawn", force=True)
        true = truth()
        for kind in ("ties", "style"):
            for rep in range(args.arena_rank_bootstrap_reps):
                data = simulate(kind, true, seed=first_seed(kind) + rep)
                out = arena_rank_methods(kind, data, "bootstrap", args.rounds, args.jobs)
                for method, interval in out.items():
                    results.setdefault((kind, method), []).append(interval)
            print(f"arena-rank bootstrap ({kind}) done, {time.perf_counter() - started:.0f}s")
        reps = args.arena_rank_bootstrap_reps
        error = 1.96 * math.sqrt(0.95 * 0.05 / (reps * N_MODELS))
        notes.append(
            f"- arena-rank bootstrap: {reps} repetitions only ({args.rounds} rounds each; "
            "every round re-compiles its JAX fit, about a minute per repetition here), so "
            f"its coverage is rough (about ±{error:.2f} on the average)."
        )
    if not with_arena_rank:
        notes.append("- arena-rank: not run.")
    rows = summarize(results, truth())
    section = render(rows, command, time.perf_counter() - started, notes)
    print(section)
    if args.doc is not None:
        write_section(args.doc, section)
        print(f"wrote the Coverage section of {args.doc}")


if __name__ == "__main__":
    main()
