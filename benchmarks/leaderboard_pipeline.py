"""Time the leaderboard pipeline on generated public-layout battles.

Writes N battles among M models (every public field, conv_metadata included) as JSON Lines
and Parquet, then measures loading + normalizing each — wall time and peak memory (RSS), each
load in a fresh child process — beside two peers run on the same files in the same run:
"whole-file", the way the loader worked before it streamed (parse the whole file with PyArrow
or Polars, then normalize it in one piece), and a plain ``polars.read_ndjson`` /
``polars.read_parquet`` that only parses. Then it times the base filters + a category, a
Bradley–Terry fit with bootstrap intervals, and style control with sandwich intervals.

    python benchmarks/leaderboard_pipeline.py --battles 200000 --models 40 --rounds 100
    python benchmarks/leaderboard_pipeline.py --battles 2000000 --load-only --data-dir /tmp/b2m

``--data-dir`` keeps the generated files (2,000,000 battles take about a minute to write and
2 GB of disk) so later runs reuse them; ``--json-array`` also loads the same battles written
as one JSON array (streamed; the whole-file JSON array reader is too slow to include).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(path: Path, n: int, n_models: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, n_models)
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models
    p = 1 / (1 + np.exp(-(strength[a] - strength[b])))
    u = rng.random(n)
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            winner = "model_a" if u[i] < 0.9 * p[i] else "model_b" if u[i] < 0.9 else "tie"
            crit = rng.random(7) < 0.5
            row = {
                "question_id": f"q{i}",
                "model_a": f"model-{a[i]:03d}",
                "model_b": f"model-{b[i]:03d}",
                "winner": winner,
                "judge": f"u{i % 5000}",
                "turn": 1 + int(i % 7 == 0),
                "anony": bool(i % 10),
                "language": ["English", "Chinese", "German", "French"][i % 4],
                "tstamp": 1.7e9 + i * 30.0,
                "dedup_tag": {"high_freq": False, "sampled": True},
                "category_tag": {
                    "criteria_v0.1": {
                        k: bool(v)
                        for k, v in zip(
                            [
                                "specificity",
                                "domain_knowledge",
                                "complexity",
                                "problem_solving",
                                "creativity",
                                "technical_accuracy",
                                "real_world",
                            ],
                            crit,
                            strict=True,
                        )
                    },
                    "if_v0.1": {"if": bool(i % 3 == 0), "score": 3},
                    "math_v0.1": {"math": bool(i % 8 == 0)},
                    "creative_writing_v0.1": {"creative_writing": bool(i % 9 == 0), "score": "no"},
                },
                "conv_metadata": {
                    "sum_user_tokens": int(rng.integers(5, 900)),
                    "sum_assistant_a_tokens": int(rng.integers(20, 1500)),
                    "sum_assistant_b_tokens": int(rng.integers(20, 1500)),
                    "header_count_a": {
                        "h1": 0,
                        "h2": int(i % 3),
                        "h3": 0,
                        "h4": 0,
                        "h5": 0,
                        "h6": 0,
                    },
                    "header_count_b": {
                        "h1": 0,
                        "h2": int(i % 2),
                        "h3": 0,
                        "h4": 0,
                        "h5": 0,
                        "h6": 0,
                    },
                    "list_count_a": {"ordered": int(i % 4), "unordered": 1},
                    "list_count_b": {"ordered": 0, "unordered": int(i % 5)},
                    "bold_count_a": {"**": int(i % 6), "__": 0},
                    "bold_count_b": {"**": int(i % 3), "__": 0},
                },
            }
            f.write(json.dumps(row) + "\n")


# Each load runs in a fresh interpreter that reports its own wall time (after imports) and
# peak RSS, so one approach's memory cannot hide another's.
LOADERS = {
    "streamed": """
from arena.leaderboard.battle_table import load_battles
frame = load_battles(PATH).frame
""",
    "whole-file": """
import hashlib
import polars as pl
import pyarrow.json as pa_json
from arena.leaderboard.battle_normalize import normalize
digest = hashlib.sha256()
with open(PATH, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
raw = pl.read_parquet(PATH) if PATH.endswith(".parquet") else pl.from_arrow(pa_json.read_json(PATH))
frame = normalize(raw)
""",
    "polars": """
import polars as pl
frame = pl.read_parquet(PATH) if PATH.endswith(".parquet") else pl.read_ndjson(PATH)
""",
}
CHILD = """
import json, resource, sys, time
PATH = sys.argv[1]
import polars, pyarrow.json, pyarrow.parquet, arena.leaderboard.battle_table
start, cpu = time.perf_counter(), time.process_time()
{body}
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
try:  # this process's own high-water mark: ru_maxrss may carry the parent's over exec
    with open("/proc/self/status") as status:
        peak = next(int(x.split()[1]) * 1024 for x in status if x.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"wall": wall, "cpu": cpu, "peak": peak, "rows": frame.height}}))
"""


def measure_load(approach: str, path: Path) -> dict[str, float]:
    """Wall time and peak RSS of one approach loading ``path``, in a child process."""
    code = CHILD.format(body=LOADERS[approach])
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{approach} on {path.name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_loads(files: dict[str, Path], approaches: dict[str, list[str]]) -> None:
    """Print wall time, CPU time (all threads) and peak RSS per (format, approach), with
    ratios to the streamed loader. On a shared machine CPU seconds vary less than wall."""
    print(
        f"{'load + normalize':<30} {'wall s':>7} {'CPU s':>7} {'peak RSS MB':>12} "
        f"{'wall ×':>7} {'RSS ×':>7}"
    )
    for label, path in files.items():
        results = {name: measure_load(name, path) for name in approaches[label]}
        base = results["streamed"]
        for name, got in results.items():
            print(
                f"{label + ' · ' + name:<30} {got['wall']:7.2f} {got['cpu']:7.2f} "
                f"{got['peak'] / 1e6:12.0f} {got['wall'] / base['wall']:7.2f} "
                f"{got['peak'] / base['peak']:7.2f}"
            )


def write_json_array(jsonl: Path, target: Path) -> None:
    """The same battles as one JSON array, one item per line, streamed."""
    with jsonl.open("rb") as src, target.open("wb") as out:
        out.write(b"[\n")
        for number, line in enumerate(src):
            out.write((b",\n" if number else b"") + line.rstrip(b"\n"))
        out.write(b"\n]\n")


def timed(label: str, fn):
    start = time.perf_counter()
    out = fn()
    print(f"{label:<48} {time.perf_counter() - start:8.2f} s")
    return out


def prepare(folder: Path, battles: int, models: int, json_array: bool) -> dict[str, Path]:
    """Generated files in ``folder``, reused when a previous run left them there."""
    import polars as pl

    jsonl = folder / f"battles-{battles}-{models}.jsonl"
    parquet = jsonl.with_suffix(".parquet")
    if not jsonl.exists():
        timed(f"generate {battles} battles (JSONL)", lambda: generate(jsonl, battles, models))
    if not parquet.exists():
        pl.scan_ndjson(jsonl).sink_parquet(parquet)
    files = {"JSONL": jsonl, "Parquet": parquet}
    if json_array:
        array = jsonl.with_suffix(".json")
        if not array.exists():
            write_json_array(jsonl, array)
        files["JSON array"] = array
    sizes = ", ".join(f"{k} {v.stat().st_size / 1e6:.1f} MB" for k, v in files.items())
    print(f"{battles} battles among {models} models: {sizes}; {os.cpu_count()} CPUs")
    return files


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--battles", type=int, default=200_000)
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--data-dir", type=Path, help="keep/reuse the generated files here")
    parser.add_argument("--load-only", action="store_true", help="skip filters and fits")
    parser.add_argument("--json-array", action="store_true", help="also load a JSON array")
    parser.add_argument("--no-peers", action="store_true", help="time only the streamed loader")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        files = prepare(folder, args.battles, args.models, args.json_array)
        peers = [] if args.no_peers else ["whole-file", "polars"]
        compare_loads(
            files,
            {
                "JSONL": ["streamed", *peers],
                "Parquet": ["streamed", *peers],
                "JSON array": ["streamed"],
            },
        )
        if not args.load_only:
            fit(files["JSONL"], args.rounds)


def fit(jsonl: Path, rounds: int) -> None:
    from arena.leaderboard.battle_table import load_battles
    from arena.leaderboard.compute import RatingSettings, compute_leaderboard
    from arena.leaderboard.filters import BattleFilters, select_battles

    loaded = load_battles(jsonl)
    full = timed(
        "filters + category full", lambda: select_battles(loaded.frame, BattleFilters(), "full")
    ).frame
    timed(
        "filters + category hard_prompts",
        lambda: select_battles(loaded.frame, BattleFilters(), "hard_prompts"),
    )
    timed(
        f"Bradley–Terry + bootstrap ({rounds} rounds)",
        lambda: compute_leaderboard(
            full, category="full", style_control=False, settings=RatingSettings(rounds=rounds)
        ),
    )
    timed(
        "Bradley–Terry + sandwich",
        lambda: compute_leaderboard(
            full, category="full", style_control=False, settings=RatingSettings(ci="sandwich")
        ),
    )
    timed(
        "style control + sandwich",
        lambda: compute_leaderboard(
            full, category="full", style_control=True, settings=RatingSettings(ci="sandwich")
        ),
    )
    timed(
        f"style control + bootstrap ({rounds} rounds)",
        lambda: compute_leaderboard(
            full, category="full", style_control=True, settings=RatingSettings(rounds=rounds)
        ),
    )


if __name__ == "__main__":
    main()
