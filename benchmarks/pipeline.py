"""Time the data pipeline (issue 11) on generated data, in three parts.

1. ``tagging``: the deterministic taggers (language, coding, multi-turn, long query, prompt
   hash) and dedup over N generated conversations (mixed languages, code, multi-turn, a head
   of much repeated prompts), as pure functions: conversations/s per tagger and in all. The
   peer is a bare loop that only reads each conversation's prompts (what any tagger pays).
2. ``screen``: the anomalous-voter screen over V generated votes (log-normal honest voters
   plus 1% random and 1% always-one-model voters), against the peer of one Bradley–Terry fit
   of the same votes; with the false-positive and detection rates it reached.
3. ``labeller``: ``arena pipeline run``'s labeller loop (``arena.pipeline.runner``, the four
   LLM taggers of ``arena.pipeline.llm_taggers``) over B battles of a SQLite store, against a
   stand-in labeller that answers every call after a fixed latency, at concurrency C. The
   peer is a bare loop that makes the same number of calls at the same concurrency and does
   nothing else: what the machine itself (its load, the event loop) costs. Bare and full
   rounds alternate (``--rounds``, medians), each full round on a fresh copy of one filled
   store. The figures are those of ``benchmarks/judge.py``:

   - ``outside_calls_pct`` = 1 - sum(call time) / (C × wall): the share of slot time spent
     outside the labeller calls (the issue's "pipeline time outside the labeller calls"),
     each call timed from its start to its answer; the wall is the whole ``run_pipeline``
     (reading battles, rendering prompts, parsing, writing tags, the first read and the
     last write included);
   - ``overhead_vs_ideal_pct`` = 1 - ideal / wall, ideal = calls × latency / C: also counts
     answers handled late because the process had no CPU (the calls then last longer);
   - ``pipeline_overhead_wall_pct`` = 1 - wall(bare) / wall, and
     ``pipeline_share_of_cpu_pct`` = 1 - cpu(bare) / cpu, against the peer.

    python3 benchmarks/pipeline.py                                  # full sizes
    python3 benchmarks/pipeline.py --conversations 200000 --votes 2000000 --battles 2000
    python3 benchmarks/pipeline.py --only screen --votes 2000000
    python3 benchmarks/pipeline.py --only labeller --latency 0.05 --keep-store /tmp/s.db
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROSE = {
    "English": "How should I plan a three day trip to the mountains with two children?",
    "Chinese": "请帮我写一封感谢信，感谢同事在项目中给予的帮助和支持。",
    "German": "Kannst du mir erklären, wie die Photosynthese in Pflanzen funktioniert?",
    "French": "Quelle est la différence entre un virus et une bactérie, expliqué simplement ?",
    "Spanish": "¿Cuáles son los mejores consejos para aprender a tocar la guitarra en casa?",
    "Russian": "Объясни, пожалуйста, почему небо голубое, простыми словами для ребёнка.",
    "Japanese": "東京で一週間過ごすなら、どの地域に泊まるのがおすすめですか？",
    "Portuguese": "Como posso melhorar a minha produtividade quando trabalho em casa?",
}
CODE = [
    "Why does this fail?\n```python\ndef mean(xs):\n    return sum(xs) / len(xs)\n"
    "print(mean([]))\n```",
    "Write a SQL query that returns the ten customers with the highest total order value.",
    "My React component re-renders forever: useEffect(() => { setCount(count + 1) }, [count])",
    "How do I reverse a linked list in C++ without extra memory?",
]
POPULAR = ["hi", "hello", "what is the meaning of life", "tell me a joke", "who are you"]


def generate_records(n: int, seed: int = 0) -> list:
    """N conversations' prompt records: 70% prose in 8 languages, 20% code, 10% from a head
    of five much repeated prompts; 20% have a second turn; a case number keeps the rest
    distinct so dedup sees a realistic long tail."""
    from arena.pipeline.tags import PromptRecord

    rng = np.random.default_rng(seed)
    kind = rng.random(n)
    pick = rng.integers(0, 1 << 30, n)
    second = rng.random(n) < 0.2
    prose = list(PROSE.values())
    records = []
    for i in range(n):
        if kind[i] < 0.1:
            first = POPULAR[pick[i] % len(POPULAR)]
        elif kind[i] < 0.3:
            first = f"{CODE[pick[i] % len(CODE)]} (case {i})"
        else:
            first = f"{prose[pick[i] % len(prose)]} ({i})"
        prompts = (first, f"And what about case {i + 1}?") if second[i] else (first,)
        records.append(PromptRecord(battle_id=f"b{i:08d}", prompts=prompts))
    return records


def bench_tagging(n: int) -> dict:
    from arena.pipeline.dedup import dedup_tags
    from arena.pipeline.taggers import DETERMINISTIC_TAGGERS

    t = time.perf_counter()
    records = generate_records(n)
    generate_s = time.perf_counter() - t
    t = time.perf_counter()
    chars = sum(len(p) for r in records for p in r.prompts)
    peer_s = time.perf_counter() - t
    per_tagger = {}
    hashes = []
    for tagger in DETERMINISTIC_TAGGERS:
        t = time.perf_counter()
        out = [tagger.run(r) for r in records]
        per_tagger[tagger.name] = time.perf_counter() - t
        if tagger.name == "prompt_hash":
            hashes = [(r.battle_id, tags[0].value) for r, tags in zip(records, out, strict=True)]
        del out
    t = time.perf_counter()
    dedup = dedup_tags(hashes)
    dedup_s = time.perf_counter() - t
    high_freq = sum(v["high_freq"] for v in dedup.values())
    total = sum(per_tagger.values()) + dedup_s
    return {
        "conversations": n,
        "prompt_chars": chars,
        "generate_s": round(generate_s, 2),
        "peer_read_prompts_s": round(peer_s, 3),
        "tagger_s": {k: round(v, 2) for k, v in per_tagger.items()},
        "dedup_s": round(dedup_s, 2),
        "dedup_high_freq": high_freq,
        "total_s": round(total, 2),
        "conversations_per_s": round(n / total),
        "ratio_to_peer": round(total / max(peer_s, 1e-9)),
    }


def generate_votes(n_votes: int, seed: int = 0, n_models: int = 60) -> dict:
    """About ``n_votes`` votes among ``n_models`` models spread over 500 rating points:
    log-normal honest voters (median 12 votes), 1% random and 1% always-one-model voters
    (20-300 votes each)."""
    rng = np.random.default_rng(seed)
    theta = np.linspace(-0.5, 0.5, n_models) * 500 / (400 / np.log(10))
    honest = rng.lognormal(np.log(12), 1.0, n_votes // 20)
    counts = np.clip(np.round(honest), 1, 1000).astype(np.int64)
    n_adv = max(2, len(counts) // 100)
    counts = np.concatenate([counts, rng.integers(20, 301, 2 * n_adv)])
    kind = np.concatenate([np.zeros(len(counts) - 2 * n_adv), np.ones(n_adv), np.full(n_adv, 2)])
    owner = np.repeat(np.arange(len(counts)), counts)
    n = len(owner)
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models
    d = theta[a] - theta[b]
    ea, eb = np.exp(d / 2), np.exp(-d / 2)
    u = rng.random(n) * (ea + eb + 0.4)
    outcome = np.where(u < ea, 0, np.where(u < ea + eb, 1, 2))
    vk = kind[owner]
    outcome[vk == 1] = rng.integers(0, 3, int((vk == 1).sum()))
    fav = rng.integers(0, n_models, len(counts))[owner]
    outcome = np.where((vk == 2) & (a == fav), 0, np.where((vk == 2) & (b == fav), 1, outcome))
    order = rng.permutation(n)
    models = np.array([f"model-{i:03d}" for i in range(n_models)])
    labels = np.array(["model_a", "model_b", "tie"])
    return {
        "voter": np.char.add("u", owner[order].astype(str)),
        "model_a": models[a[order]],
        "model_b": models[b[order]],
        "winner": labels[outcome[order]],
        "kind": kind,
    }


def bench_screen(n_votes: int) -> dict:
    from arena.pipeline.anomalous_voters import screen_voters
    from arena.ratings import Battles, fit_bradley_terry

    t = time.perf_counter()
    votes = generate_votes(n_votes)
    generate_s = time.perf_counter() - t
    t = time.perf_counter()
    battles = Battles.from_columns(votes["model_a"], votes["model_b"], votes["winner"])
    fit_bradley_terry(battles, ties="davidson")
    peer_s = time.perf_counter() - t
    t = time.perf_counter()
    result = screen_voters(votes["voter"], votes["model_a"], votes["model_b"], votes["winner"])
    screen_s = time.perf_counter() - t
    kinds = votes["kind"]
    rates = {}
    for code, name in ((0, "honest"), (1, "random"), (2, "favourite")):
        judged = [v for v in result.verdicts if kinds[int(v.voter[1:])] == code]
        rates[name] = {
            "tested": len(judged),
            "flagged": sum(v.flagged for v in judged),
            "rate": round(sum(v.flagged for v in judged) / max(1, len(judged)), 4),
        }
    return {
        "votes": result.votes,
        "voters": result.voters,
        "tested_voters": len(result.verdicts),
        "alpha": result.alpha,
        "generate_s": round(generate_s, 2),
        "screen_s": round(screen_s, 2),
        "peer_bt_fit_s": round(peer_s, 2),
        "ratio_to_peer": round(screen_s / peer_s, 1),
        "votes_per_s": round(result.votes / screen_s),
        "flag_rates": rates,
    }


def _fill_store(db, n: int) -> None:
    from arena.store.battles import create_battle
    from arena.store.conversations import add_message

    for r in generate_records(n, seed=1):
        battle = create_battle(db, mode="battle", model_a="alpha", model_b="beta")
        for conv in (battle.conversation_a_id, battle.conversation_b_id):
            for prompt in r.prompts:
                add_message(db, conv, role="user", content=prompt)


def _template_store(n: int, keep: Path | None, tmp: Path) -> tuple[Path, float]:
    """A SQLite store of ``n`` battles with no tags (copied for every round), and the
    seconds it took to fill; ``keep``: reuse that file when it exists, else save it there."""
    from arena.store.db import Database
    from arena.store.migrate import upgrade

    if keep is not None and keep.exists():
        upgrade(f"sqlite:///{keep}")
        return keep, 0.0
    path = keep or tmp / "template.db"
    upgrade(f"sqlite:///{path}")
    db = Database(f"sqlite:///{path}")
    t = time.perf_counter()
    _fill_store(db, n)
    fill_s = time.perf_counter() - t
    db.dispose()
    return path, fill_s


def _standin_answer() -> str:
    from arena.pipeline.llm_taggers import CRITERIA_ALIASES

    fields = dict.fromkeys(CRITERIA_ALIASES, False)
    fields.update(score=3, math=False, creative_writing=False)
    return json.dumps(fields)


class StandIn:
    """The stand-in labeller: answers every call after ``latency`` seconds, and keeps what
    the judge benchmark keeps: calls, the summed time of each call from its start to its
    answer (``call_s``), the peak in flight and the time with no call in flight."""

    def __init__(self, latency: float) -> None:
        self.latency, self.answer = latency, _standin_answer()
        self.reset()

    def reset(self) -> None:
        self.calls, self.in_flight, self.peak = 0, 0, 0
        self.call_s, self.idle_s, self.idle_since = 0.0, 0.0, None

    async def ask(self, prompt: str) -> str:
        started = time.perf_counter()
        if self.in_flight == 0 and self.idle_since is not None:
            self.idle_s += started - self.idle_since
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
            now = time.perf_counter()
            self.call_s += now - started
            if self.in_flight == 0:
                self.idle_since = now
        return self.answer


async def _bare_calls(calls: int, concurrency: int, ask) -> None:
    """The peer: ``concurrency`` loops that only call ``ask`` until ``calls`` are made."""
    left = [calls]

    async def loop() -> None:
        while left[0] > 0:
            left[0] -= 1
            await ask("peer")

    await asyncio.gather(*(loop() for _ in range(concurrency)))


def _full_round(template: Path, tmp: Path, stand_in: StandIn, concurrency: int) -> dict:
    """One labelling run of ``arena.pipeline.runner`` over a fresh copy of the store."""
    from arena.pipeline.llm_taggers import LLM_TAGGERS
    from arena.pipeline.runner import run_pipeline
    from arena.store.db import Database

    path = tmp / "round.db"
    shutil.copyfile(template, path)
    db = Database(f"sqlite:///{path}")
    stand_in.reset()
    t, cpu = time.perf_counter(), time.process_time()
    report = run_pipeline(
        db,
        taggers=(),
        labellers=LLM_TAGGERS,
        ask=stand_in.ask,
        concurrency=concurrency,
        with_dedup=False,
        with_voter_screen=False,
    )
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    db.dispose()
    path.unlink()
    bad = sum(c.unparsable + c.errors for c in report.taggers.values())
    return {"wall": wall, "cpu": cpu, "call_s": stand_in.call_s, "calls": stand_in.calls,
            "idle_s": stand_in.idle_s, "peak": stand_in.peak, "bad": bad}  # fmt: skip


def _bare_round(calls: int, stand_in: StandIn, concurrency: int) -> dict:
    stand_in.reset()
    t, cpu = time.perf_counter(), time.process_time()
    asyncio.run(_bare_calls(calls, concurrency, stand_in.ask))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "call_s": stand_in.call_s}


def bench_labeller(
    n: int, latency: float, concurrency: int, rounds: int = 3, keep_store: Path | None = None
) -> dict:
    """Full and bare rounds in alternation (so other processes' load hits both alike), with
    the judge benchmark's figures (``benchmarks/judge.py``), medians over the rounds."""
    from arena.pipeline.llm_taggers import LLM_TAGGERS

    calls = n * len(LLM_TAGGERS)
    stand_in = StandIn(latency)
    full, bare, loads = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        template, fill_s = _template_store(n, keep_store, Path(tmp))
        for _ in range(max(1, rounds)):
            loads.append(os.getloadavg()[0])
            bare.append(_bare_round(calls, stand_in, concurrency))
            full.append(_full_round(template, Path(tmp), stand_in, concurrency))
            if full[-1]["calls"] != calls:
                raise RuntimeError(f"{full[-1]['calls']} calls made, {calls} expected")
        loads.append(os.getloadavg()[0])
    med = statistics.median
    wall, bare_wall = med(r["wall"] for r in full), med(r["wall"] for r in bare)
    cpu, bare_cpu = med(r["cpu"] for r in full), med(r["cpu"] for r in bare)
    ideal = calls * latency / concurrency

    def outside(r: dict) -> float:  # the judge's "outside calls": slot time not in a call
        return 100 * (1 - r["call_s"] / (concurrency * r["wall"]))

    return {
        "battles": n,
        "taggers": len(LLM_TAGGERS),
        "calls": calls,
        "latency_s": latency,
        "concurrency": concurrency,
        "rounds": len(full),
        "peak_in_flight": max(r["peak"] for r in full),
        "fill_store_s": round(fill_s, 1),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "ideal_s": round(ideal, 2),
        "outside_calls_pct": round(med(outside(r) for r in full), 2),
        "overhead_vs_ideal_pct": round(100 * (1 - ideal / wall), 2),
        "pipeline_overhead_wall_pct": round(100 * (1 - bare_wall / wall), 2),
        "pipeline_share_of_cpu_pct": round(100 * (1 - bare_cpu / cpu), 2),
        "mean_call_ms": round(1000 * med(r["call_s"] for r in full) / calls, 2),
        "no_call_in_flight_pct": round(med(100 * r["idle_s"] / r["wall"] for r in full), 2),
        "peer_bare_calls_s": round(bare_wall, 2),
        "peer_cpu_s": round(bare_cpu, 2),
        "peer_outside_calls_pct": round(med(outside(r) for r in bare), 2),
        "peer_overhead_vs_ideal_pct": round(100 * (1 - ideal / bare_wall), 2),
        "rounds_outside_calls_pct": [round(outside(r), 2) for r in full],
        "rounds_wall_s": [round(r["wall"], 2) for r in full],
        "rounds_bare_wall_s": [round(r["wall"], 2) for r in bare],
        "load_avg_1m": [round(x, 2) for x in loads],
        "unparsable_or_error": sum(r["bad"] for r in full),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--votes", type=int, default=2_000_000)
    parser.add_argument("--battles", type=int, default=2000, help="store battles to label")
    parser.add_argument("--latency", type=float, default=0.2, help="stand-in labeller latency")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=3, help="labeller: full and bare rounds (medians)"
    )
    parser.add_argument(
        "--keep-store",
        type=Path,
        help="labeller: reuse this filled SQLite store if it exists, else save it there",
    )
    parser.add_argument(
        "--only", action="append", choices=("tagging", "screen", "labeller"), default=None
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    parts = args.only or ["tagging", "screen", "labeller"]
    results = {}
    if "tagging" in parts:
        results["tagging"] = bench_tagging(args.conversations)
        print(json.dumps({"tagging": results["tagging"]}, indent=2), flush=True)
    if "screen" in parts:
        results["screen"] = bench_screen(args.votes)
        print(json.dumps({"screen": results["screen"]}, indent=2), flush=True)
    if "labeller" in parts:
        results["labeller"] = bench_labeller(
            args.battles, args.latency, args.concurrency, args.rounds, args.keep_store
        )
        print(json.dumps({"labeller": results["labeller"]}, indent=2), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return None


if __name__ == "__main__":
    sys.exit(main())
