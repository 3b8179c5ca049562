"""Routing overhead: router decisions per second, and what a routed request costs in the gateway
over a direct one.

Part 1 (in process): each router (``random``, ``mf``, ``classifier``, ``sw-ranking``, trained on
synthetic battles with TF-IDF features) decides for distinct prompts one at a time, as the
gateway does: featurise + decide per request. ``mf`` is also timed with cached embeddings
(an embeddings featuriser whose vectors are already in memory), the issue's goal case.

Part 2 (processes on loopback): a stand-in OpenAI upstream (``benchmarks/gateway.py``'s), a
gateway (``create_server_app``) whose registry has the direct model ``bench`` and one
``router-<kind>-<t>`` model per router, both targets pointing at the stand-in, and sequential
non-streaming requests from this process, direct and routed interleaved. It prints median
latencies, the routed/direct ratio and the added milliseconds.

    python benchmarks/routing.py            # default sizes
    python benchmarks/routing.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOPICS = {
    "math": ["integral", "derivative", "equation", "theorem", "prove", "matrix", "eigenvalue"],
    "chat": ["hello", "weather", "movie", "recipe", "vacation", "birthday", "weekend"],
}
FILLER = ["please", "tell", "me", "about", "the", "a", "what", "how", "why", "some"]


def prompts(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    out, labels = [], []
    for i in range(n):
        topic = "math" if i % 2 else "chat"
        words = list(rng.choice(TOPICS[topic], 6)) + list(rng.choice(FILLER, 4))
        rng.shuffle(words)
        out.append(f"{' '.join(words)} number {seed}-{i}")
        labels.append(topic)
    return out, labels


def battles(n: int) -> Any:
    from arena.routing.data import PreferenceData

    texts, labels = prompts(n, seed=1)
    rng = np.random.default_rng(2)
    winners = ["model_a" if (t == "math") != (rng.random() < 0.1) else "tie" for t in labels]
    return PreferenceData(
        tuple(texts),
        np.array(["strong"] * n, dtype=object),
        np.array(["weak"] * n, dtype=object),
        np.array(winners, dtype=object),
        np.ones(n),
    )


def timed_decisions(provider: Any, texts: list[str]) -> float:
    """Seconds per decision (featurise + decide), one prompt at a time."""
    start = time.perf_counter()
    for text in texts:
        provider.decide(text)
    return (time.perf_counter() - start) / len(texts)


def part_one(routers: dict[str, Any], n: int) -> dict[str, float]:
    from arena.providers.demo import DemoProvider
    from arena.providers.router import RouterProvider
    from arena.routing.featurizers import EmbeddingFeaturizer
    from arena.routing.training import train_router

    targets = {"strong": DemoProvider("strong"), "weak": DemoProvider("weak")}
    texts, _ = prompts(n, seed=9)
    results = {}
    for kind, router in routers.items():
        provider = RouterProvider(
            f"router-{kind}", router, targets, threshold=0.5, strong="strong", weak="weak"
        )
        count = n if kind != "sw-ranking" else max(20, n // 50)
        results[kind] = timed_decisions(provider, texts[:count])
    embedder = DemoProvider("embedder")
    featurizer = EmbeddingFeaturizer(embedder, "embedder")
    try:
        mf = train_router("mf", battles(400), featurizer=featurizer, strong="strong", weak="weak")
        asyncio.run(featurizer.aembed(texts))  # the cache every later decision reads
        provider = RouterProvider(
            "router-mf-emb", mf, targets, threshold=0.5, strong="strong", weak="weak"
        )
        results["mf (cached embeddings)"] = timed_decisions(provider, texts)
    finally:
        featurizer.close()
    return results


# ---------------------------------------------------------------- part two: the gateway


def load_gateway_bench() -> Any:
    """``benchmarks/gateway.py`` (its stand-in upstream and helpers)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gateway

    return gateway


def wait_for(url: str, deadline_s: float = 60.0) -> None:
    import httpx

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


GATEWAY = """
import sys, uvicorn
from arena.config import Settings
from arena.providers.registry import load_registry
from arena.server import create_server_app
data = sys.argv[1]
settings = Settings(data_dir=data, database_url=f"sqlite:///{data}/arena.db")
app = create_server_app(settings, registry=load_registry(sys.argv[2]))
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning",
            loop="uvloop", http="httptools")
"""


def part_two(router_dirs: dict[str, Path], work: Path, requests: int) -> dict[str, Any]:
    import httpx
    import yaml

    bench = load_gateway_bench()
    up_port, gw_port = bench.free_port(), bench.free_port()
    upstream_url = f"http://127.0.0.1:{up_port}/v1"
    models: list[dict[str, Any]] = [
        {"name": n, "provider": "openai_compatible", "base_url": upstream_url}
        for n in ("bench", "bench-weak")
    ]
    names = {}
    for kind, source in router_dirs.items():
        names[kind] = f"router-{kind}-0.5"
        models.append(
            {
                "name": names[kind],
                "provider": "router",
                "router": str(source),
                "strong": "bench",
                "weak": "bench-weak",
            }
        )
    registry = work / "registry.yaml"
    registry.write_text(yaml.safe_dump({"models": models}))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import gateway; "
        "gateway.run_upstream(int(sys.argv[2]), 16)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(ROOT / "benchmarks"), str(up_port)]),
        subprocess.Popen([sys.executable, "-c", GATEWAY, str(work), str(registry), str(gw_port)]),
    ]
    try:
        wait_for(f"http://127.0.0.1:{up_port}/v1/models")
        wait_for(f"http://127.0.0.1:{gw_port}/health")
        texts, _ = prompts(requests, seed=21)
        latency: dict[str, list[float]] = {"direct": [], **{k: [] for k in names}}
        with httpx.Client(base_url=f"http://127.0.0.1:{gw_port}", timeout=30) as client:

            def call(model: str, text: str) -> float:
                body = {"model": model, "messages": [{"role": "user", "content": text}]}
                start = time.perf_counter()
                response = client.post("/v1/chat/completions", json=body)
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                return elapsed

            for text in texts[:20]:  # warm-up: connections, caches, first imports
                call("bench", text)
                for name in names.values():
                    call(name, text)
            for text in texts:
                latency["direct"].append(call("bench", text))
                for kind, name in names.items():
                    latency[kind].append(call(name, text))
        return {k: statistics.median(v) for k, v in latency.items()}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = parser.parse_args()
    from arena.routing.persistence import save_router
    from arena.routing.router import RandomRouter
    from arena.routing.training import train_router

    data = battles(400 if args.quick else 2000)
    routers: dict[str, Any] = {"random": RandomRouter()}
    for kind in ("mf", "classifier", "sw-ranking"):
        routers[kind] = train_router(kind, data, strong="strong", weak="weak")
    n = 200 if args.quick else 5000
    per_decision = part_one(routers, n)
    print(f"router decisions, one prompt at a time (featurise + decide), {len(data)} battles:")
    for kind, seconds in per_decision.items():
        print(f"  {kind:24s} {seconds * 1e6:9.1f} µs/decision  {1 / seconds:10,.0f} decisions/s")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        dirs: dict[str, Path] = {}
        for kind, router in routers.items():
            if kind == "random":
                continue
            dirs[kind] = save_router(router, work / "routers" / kind)
        medians = part_two(
            {"random": "random", **dirs},  # type: ignore[dict-item]
            work,
            60 if args.quick else 400,
        )
    direct = medians.pop("direct")
    print(f"\ngateway, non-streaming, sequential; direct median {direct * 1e3:.2f} ms:")
    for kind, median in medians.items():
        print(
            f"  {kind:24s} median {median * 1e3:7.2f} ms  ratio {median / direct:5.2f}  "
            f"added {(median - direct) * 1e3:+6.2f} ms"
        )


if __name__ == "__main__":
    main()
