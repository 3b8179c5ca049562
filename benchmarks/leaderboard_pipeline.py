"""Time the leaderboard pipeline on generated public-layout battles.

Writes N battles among M models (every public field, conv_metadata included) as JSON Lines
and Parquet, then times: loading + normalizing each, the base filters + a category, a
Bradley–Terry fit with bootstrap intervals, and style control with sandwich intervals.

    python benchmarks/leaderboard_pipeline.py --battles 200000 --models 40 --rounds 100
"""

from __future__ import annotations

import argparse
import json
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


def timed(label: str, fn):
    start = time.perf_counter()
    out = fn()
    print(f"{label:<48} {time.perf_counter() - start:8.2f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--battles", type=int, default=200_000)
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()

    import polars as pl

    from arena.leaderboard.battle_table import load_battles
    from arena.leaderboard.compute import RatingSettings, compute_leaderboard
    from arena.leaderboard.filters import BattleFilters, select_battles

    with tempfile.TemporaryDirectory() as tmp:
        jsonl = Path(tmp) / "battles.jsonl"
        parquet = Path(tmp) / "battles.parquet"
        timed(
            f"generate {args.battles} battles (JSONL)",
            lambda: generate(jsonl, args.battles, args.models),
        )
        pl.read_ndjson(jsonl, infer_schema_length=None).write_parquet(parquet)
        mb = jsonl.stat().st_size / 1e6, parquet.stat().st_size / 1e6
        print(f"JSONL {mb[0]:.1f} MB, Parquet {mb[1]:.1f} MB")
        loaded = timed("load + normalize JSONL", lambda: load_battles(jsonl))
        timed("load + normalize Parquet", lambda: load_battles(parquet))
        full = timed(
            "filters + category full", lambda: select_battles(loaded.frame, BattleFilters(), "full")
        ).frame
        timed(
            "filters + category hard_prompts",
            lambda: select_battles(loaded.frame, BattleFilters(), "hard_prompts"),
        )
        timed(
            f"Bradley–Terry + bootstrap ({args.rounds} rounds)",
            lambda: compute_leaderboard(
                full,
                category="full",
                style_control=False,
                settings=RatingSettings(rounds=args.rounds),
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
            f"style control + bootstrap ({args.rounds} rounds)",
            lambda: compute_leaderboard(
                full,
                category="full",
                style_control=True,
                settings=RatingSettings(rounds=args.rounds),
            ),
        )


if __name__ == "__main__":
    main()
