"""Benchmark the rating engine against arena-rank and FastChat on simulated battles.

Simulates battles (default 2,000,000 over 130 models, with per-side style features),
writes them as Parquet, then times, for each implementation in its own subprocess:
loading, plain Bradley–Terry with bootstrap intervals, style control with bootstrap
intervals, and online Elo. Prints a table with ratios and writes it to
docs/benchmarks-ratings.md.

Where a reference cannot run the full number of bootstrap rounds in reasonable time,
it is timed at two smaller round counts and the line through them is extrapolated;
the table marks those figures with "~".

    python benchmarks/ratings.py                       # full run (tens of minutes)
    python benchmarks/ratings.py --battles 200000 --skip-fastchat   # quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURES = ["sum_assistant_tokens", "header_count", "list_count", "bold_count"]
ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- data
def simulate(path: Path, n_battles: int, n_models: int, seed: int) -> None:
    """Battles from a contextual Bradley–Terry model with random ties, as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 0.7, n_models)
    a = rng.integers(0, n_models, n_battles)
    b = (a + rng.integers(1, n_models, n_battles)) % n_models
    mean_len = rng.uniform(150, 1200, n_models)
    mean_md = rng.uniform(0.2, 8, (n_models, 3))

    def side(m):
        return [rng.poisson(mean_len[m])] + [rng.poisson(mean_md[m, c]) for c in range(3)]

    fa, fb = side(a), side(b)
    x = []
    for ca, cb in zip(fa, fb, strict=True):
        tot = ca + cb
        raw = (ca - cb) / np.where(tot == 0, 1, tot)
        x.append((raw - raw.mean()) / raw.std())
    logit = theta[a] - theta[b] + np.column_stack(x) @ np.array([0.3, 0.08, 0.05, 0.07])
    win = np.where(rng.random(n_battles) < 1 / (1 + np.exp(-logit)), 0, 1)
    tie = rng.random(n_battles)
    win[tie < 0.2] = 2
    win[tie < 0.07] = 3
    names = np.array([f"model-{i:03d}" for i in range(n_models)])
    winners = np.array(["model_a", "model_b", "tie", "tie (bothbad)"])
    cols = {"model_a": names[a], "model_b": names[b], "winner": winners[win]}
    for f, ca, cb in zip(FEATURES, fa, fb, strict=True):
        cols[f"{f}_a"] = ca.astype(np.int64)
        cols[f"{f}_b"] = cb.astype(np.int64)
    pq.write_table(pa.table(cols), path)


def fit_line(points: list[tuple[int, float]], target: int) -> float:
    """Time at ``target`` rounds from (rounds, seconds) measurements at two round counts.

    The slope between the two points removes one-off costs (process start-up); when noise
    on a shared machine makes it non-positive, fall back to the larger run's time per round.
    """
    (r1, t1), (r2, t2) = sorted(points)
    slope = (t2 - t1) / (r2 - r1)
    if slope <= 0:
        return t2 / r2 * target
    return t2 + slope * (target - r2)


# ---------------------------------------------------------------- workers
def worker_arena(args) -> dict:
    import pyarrow.parquet as pq

    from arena.ratings import Battles, bootstrap_intervals, compute_elo, fit_style_control

    out: dict = {"cpu": {}}

    def timed(key, fn):
        t, c = time.perf_counter(), time.process_time()
        value = fn()
        out[key] = time.perf_counter() - t
        out["cpu"][key] = time.process_time() - c
        return value

    def load():
        # Names and winners come back dictionary-encoded: no per-row strings are built.
        table = pq.read_table(args.data, read_dictionary=["model_a", "model_b", "winner"])
        battles = Battles.from_columns(
            table["model_a"],
            table["model_b"],
            table["winner"],
            features_a=np.column_stack([table[f"{f}_a"].to_numpy() for f in FEATURES]),
            features_b=np.column_stack([table[f"{f}_b"].to_numpy() for f in FEATURES]),
            feature_names=FEATURES,
        )
        return table, battles

    table, battles = timed("load", load)
    plain = timed(
        "plain", lambda: bootstrap_intervals(battles, rounds=args.rounds, seed=0, n_jobs=args.jobs)
    )
    style = timed(
        "style",
        lambda: fit_style_control(
            battles, rounds=args.style_rounds, seed=0, compare_plain=False, n_jobs=args.jobs
        ),
    )
    timed(
        "style_davidson",
        lambda: fit_style_control(
            battles,
            rounds=args.style_rounds,
            seed=0,
            compare_plain=False,
            n_jobs=args.jobs,
            ties="davidson",
        ),
    )
    timed("elo", lambda: compute_elo(table["model_a"], table["model_b"], table["winner"]))
    reference_like = fit_style_control(
        battles, ci="sandwich", reweight="ipw", coef_ridge=1.0, compare_plain=False
    )
    np.savez(
        Path(args.scratch) / "arena.npz",
        models=np.array(plain.models),
        plain=plain.ratings,
        style_ipw=reference_like.ratings,
        style_coeffs=np.array(list(reference_like.coefficients.values())),
    )
    out["style_coefficients"] = style.coefficients
    return out


def worker_arena_rank(args) -> dict:
    import multiprocessing as mp

    import pandas as pd
    from arena_rank.models.bradley_terry import BradleyTerry
    from arena_rank.models.contextual_bradley_terry import ContextualBradleyTerry
    from arena_rank.utils.data_utils import ContextualPairDataset, PairDataset

    # arena-rank forks a process pool after JAX has started its threads, which
    # deadlocks; spawned workers do not.
    mp.set_start_method("spawn", force=True)
    out: dict = {"notes": []}
    t = time.perf_counter()
    df = pd.read_parquet(args.data)
    df["winner"] = df["winner"].replace({"tie (bothbad)": "both_bad"})
    data = PairDataset.from_pandas(df)
    out["load"] = time.perf_counter() - t

    def plain_model():
        return BradleyTerry(n_competitors=len(data.competitors))

    t = time.perf_counter()
    model = plain_model().fit(data)
    fit_s = time.perf_counter() - t
    plain_ratings = np.asarray(model.compute_ratings_and_cis(data)["ratings"])
    points = []
    for r in args.ref_plain_rounds:
        model = plain_model().fit(data)
        t = time.perf_counter()
        model.compute_ratings_and_cis(
            data, ci_method="bootstrap", num_bootstrap=r, n_jobs=args.jobs
        )
        points.append((r, time.perf_counter() - t))
    out["plain"] = fit_s + fit_line(points, args.rounds)
    out["plain_extrapolated"] = max(args.ref_plain_rounds) < args.rounds
    out["notes"].append(f"plain: fit {fit_s:.1f}s; bootstrap (rounds, s) {points}")

    t = time.perf_counter()
    for f in FEATURES:
        diff = df[f"{f}_a"] - df[f"{f}_b"]
        total = (df[f"{f}_a"] + df[f"{f}_b"]).replace(0, 1)
        raw = diff / total
        df[f] = (raw - raw.mean()) / raw.std()
    cdata = ContextualPairDataset.from_pandas(df, feature_cols=FEATURES)
    prep_s = time.perf_counter() - t

    def style_model():
        return ContextualBradleyTerry(n_competitors=len(cdata.competitors), n_features=4)

    t = time.perf_counter()
    model = style_model().fit(cdata)
    sfit_s = time.perf_counter() - t
    style_ratings = np.asarray(model.compute_ratings_and_cis(cdata)["ratings"])
    points = []
    for r in args.ref_style_rounds:
        model = style_model().fit(cdata)
        t = time.perf_counter()
        model.compute_ratings_and_cis(
            cdata, ci_method="bootstrap", num_bootstrap=r, n_jobs=args.jobs
        )
        points.append((r, time.perf_counter() - t))
    out["style"] = prep_s + sfit_s + fit_line(points, args.style_rounds)
    out["style_extrapolated"] = max(args.ref_style_rounds) < args.style_rounds
    out["notes"].append(
        f"style: features {prep_s:.1f}s, fit {sfit_s:.1f}s; bootstrap (rounds, s) {points}"
    )
    np.savez(
        Path(args.scratch) / "arena_rank.npz",
        models=np.array(data.competitors),
        plain=plain_ratings,
        style_ipw=style_ratings,
        style_coeffs=np.asarray(model.params["coeffs"]),
    )
    return out


def worker_fastchat(args) -> dict:
    import pandas as pd
    from fastchat.serve.monitor.elo_analysis import (
        compute_elo,
        compute_elo_mle_with_tie,
        get_bootstrap_result,
    )

    out: dict = {"notes": []}
    t = time.perf_counter()
    df = pd.read_parquet(args.data, columns=["model_a", "model_b", "winner"])
    out["load"] = time.perf_counter() - t
    out["notes"].append("load: reads the DataFrame only; names are encoded inside every fit")
    # FastChat builds a dense (2n × models) design; cap it to what memory allows and
    # scale the per-round time linearly in n.
    n = len(df)
    cap = args.fastchat_max_battles
    sub = df.sample(n=min(n, cap), random_state=0) if n > cap else df
    points = []
    for r in (1, 2):
        t = time.perf_counter()
        get_bootstrap_result(sub, compute_elo_mle_with_tie, num_round=r)
        points.append((r, time.perf_counter() - t))
    scale = n / len(sub)
    out["plain"] = fit_line(points, args.rounds) * scale
    out["plain_extrapolated"] = True
    out["notes"].append(
        f"plain: {len(sub)} battles, bootstrap (rounds, s) {points}, scaled by n x{scale:.1f}"
    )
    out["style"] = None
    out["notes"].append("style control: not in the PyPI release of fschat")
    t = time.perf_counter()
    compute_elo(df)
    out["elo"] = time.perf_counter() - t
    return out


WORKERS = {"arena": worker_arena, "arena-rank": worker_arena_rank, "fastchat": worker_fastchat}


def style_objective_gap(data: Path, ours, ref) -> str:
    """Compare both style fits (arena-rank settings) on the same penalized objective."""
    import pyarrow.parquet as pq

    from arena.ratings import Battles, normalize_features
    from arena.ratings.style_rows import _objective, _sorted_rows

    table = pq.read_table(data, read_dictionary=["model_a", "model_b", "winner"])
    battles = Battles.from_columns(
        table["model_a"],
        table["model_b"],
        table["winner"],
        features_a=np.column_stack([table[f"{f}_a"].to_numpy() for f in FEATURES]),
        features_b=np.column_stack([table[f"{f}_b"].to_numpy() for f in FEATURES]),
    )
    x, _, _ = normalize_features(battles, "reference")
    weights = battles.effective_weights("ipw")
    func = _objective(_sorted_rows(battles, weights, x), 0.0, float(weights.sum()))
    alpha = 400 / math.log(10)
    n = battles.n_models
    ours_theta = (ours["style_ipw"] - 1000) / alpha
    ref_theta = (ref["style_ipw"] - 1000) / alpha
    loss_ours, grad_ours, _ = func(np.r_[ours_theta, ours["style_coeffs"]])
    loss_ref, grad_ref, _ = func(np.r_[ref_theta, ref["style_coeffs"]])
    g_ours = float(np.abs(grad_ours[:n]).max())
    g_ref = float(np.abs(grad_ref[:n]).max())
    return (
        f"style fit (arena-rank settings), penalized negative log-likelihood: Arena "
        f"{loss_ours:.4f} (max |rating gradient| {g_ours:.1e}), arena-rank {loss_ref:.4f} "
        f"(max |rating gradient| {g_ref:.1e})"
    )


# ---------------------------------------------------------------- driver
def run_worker(name: str, args, scratch: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--data",
        str(args.data),
        "--scratch",
        str(scratch),
        "--rounds",
        str(args.rounds),
        "--style-rounds",
        str(args.style_rounds),
        "--jobs",
        str(args.jobs),
        "--ref-plain-rounds",
        ",".join(map(str, args.ref_plain_rounds)),
        "--ref-style-rounds",
        ",".join(map(str, args.ref_style_rounds)),
        "--fastchat-max-battles",
        str(args.fastchat_max_battles),
    ]
    print(f"... running {name}", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout}s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    return json.loads(lines[-1][len("RESULT ") :])


def fmt(seconds, approx=False) -> str:
    if seconds is None:
        return "n/a"
    return f"{'~' if approx else ''}{seconds:,.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def ratio(other, ours) -> str:
    if other is None or ours is None or ours <= 0:
        return "n/a"
    return f"{other / ours:,.1f}x"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--battles", type=int, default=2_000_000)
    ap.add_argument("--models", type=int, default=130)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--style-rounds", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2, help="threads/processes per implementation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="folder for the Parquet file")
    ap.add_argument("--ref-plain-rounds", default="4,32", help="arena-rank rounds to time")
    ap.add_argument("--ref-style-rounds", default="2,6", help="arena-rank style rounds to time")
    ap.add_argument("--fastchat-max-battles", type=int, default=200_000)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--skip-fastchat", action="store_true")
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks-ratings.md")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.ref_plain_rounds = [int(x) for x in str(args.ref_plain_rounds).split(",")]
    args.ref_style_rounds = [int(x) for x in str(args.ref_style_rounds).split(",")]
    if args.worker:
        print("RESULT " + json.dumps(WORKERS[args.worker](args)), flush=True)
        return

    command = "python " + " ".join([os.path.relpath(__file__, ROOT), *sys.argv[1:]])
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        args.data = folder / f"battles_{args.battles}_{args.models}.parquet"
        t = time.perf_counter()
        simulate(args.data, args.battles, args.models, args.seed)
        print(f"simulated {args.battles:,} battles in {time.perf_counter() - t:.1f}s: {args.data}")
        load_avg = os.getloadavg()
        results = {"arena": run_worker("arena", args, Path(tmp))}
        if not args.skip_reference:
            results["arena-rank"] = run_worker("arena-rank", args, Path(tmp))
        if not args.skip_fastchat:
            results["fastchat"] = run_worker("fastchat", args, Path(tmp))
        agreement = []
        if (Path(tmp) / "arena_rank.npz").exists() and (Path(tmp) / "arena.npz").exists():
            ours, ref = np.load(Path(tmp) / "arena.npz"), np.load(Path(tmp) / "arena_rank.npz")
            if list(ours["models"]) == list(ref["models"]):
                for key, label in (("plain", "plain ratings"), ("style_ipw", "style ratings")):
                    gap = float(np.abs(ours[key] - ref[key]).max())
                    agreement.append(f"{label}: max |Arena - arena-rank| = {gap:.4f} points")
                agreement.append(style_objective_gap(args.data, ours, ref))
    report = render(args, results, agreement, command, load_avg)
    print(report)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(report + kept_sections(args.doc))
    print(f"wrote {args.doc} (its dated sections kept)")


def kept_sections(doc: Path) -> str:
    """The document's own ``## `` sections (dated re-runs, coverage): a new run replaces
    only the generated part above them."""
    if not doc.exists():
        return ""
    text = doc.read_text()
    at = text.find("\n## ")
    return "" if at < 0 else text[at:]


def render(args, results, agreement, command, load_avg) -> str:
    arena = results["arena"]
    if "error" in arena:
        raise SystemExit(f"Arena run failed: {arena['error']}")
    ref = results.get("arena-rank", {"error": "skipped"})
    fc = results.get("fastchat", {"error": "skipped"})
    steps = [
        ("load (Parquet to fit-ready arrays)", "load", None),
        (f"plain Bradley–Terry + {args.rounds} bootstrap rounds", "plain", "plain_extrapolated"),
        (f"style control + {args.style_rounds} bootstrap rounds", "style", "style_extrapolated"),
        (
            f"style control, Davidson ties + {args.style_rounds} bootstrap rounds",
            "style_davidson",
            None,
        ),
        ("online Elo", "elo", None),
    ]
    lines = [
        "# Rating engine benchmark",
        "",
        f"{args.battles:,} simulated battles over {args.models} models with four per-side style "
        f"features (tokens, headers, lists, bold), ~20% ties; {args.jobs} worker threads or "
        "processes per implementation.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average at start {load_avg[0]:.1f} "
        "(the cores are shared with other jobs, so absolute times are noisy; ratios matter).",
        "",
        f"Command: `{command}`",
        "",
        "| step | Arena | arena-rank | ratio | FastChat (fschat) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label, key, approx_key in steps:
        ours = arena.get(key)
        r = None if "error" in ref else ref.get(key)
        f = None if "error" in fc else fc.get(key)
        r_approx = bool(approx_key and "error" not in ref and ref.get(approx_key))
        f_approx = bool(approx_key and "error" not in fc and fc.get(approx_key))
        lines.append(
            f"| {label} | {fmt(ours)} | {fmt(r, r_approx)} | {ratio(r, ours)} "
            f"| {fmt(f, f_approx)} | {ratio(f, ours)} |"
        )
    lines += ["", "Notes:", ""]
    lines.append(
        "- `~`: extrapolated along the line through two measured round counts (and, for "
        "FastChat, scaled linearly from a subsample), because the full run takes too long."
    )
    for name, res in (("arena-rank", ref), ("FastChat", fc)):
        if "error" in res:
            lines.append(f"- {name}: could not run ({res['error']}).")
        for note in res.get("notes", []):
            lines.append(f"- {name} {note}")
    if arena.get("cpu"):
        cpu = ", ".join(f"{k} {v:.2f} s" for k, v in arena["cpu"].items())
        lines.append(f"- Arena CPU time (all threads, less sensitive to other jobs): {cpu}")
    if "style_coefficients" in arena:
        coefs = ", ".join(f"{k} {v:.3f}" for k, v in arena["style_coefficients"].items())
        lines.append(f"- Arena style coefficients (log-odds per SD): {coefs}")
    lines += [f"- {a}" for a in agreement]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
