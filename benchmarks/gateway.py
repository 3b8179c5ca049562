"""Gateway overhead benchmark: direct-to-upstream vs Arena's gateway vs the LiteLLM proxy.

One run starts, each as its own process on loopback:

* a stand-in OpenAI upstream (raw ASGI on uvicorn + uvloop + httptools) that streams a fixed
  number of tokens per request as fast as it can;
* ``arena serve`` routing model ``bench`` to it;
* the LiteLLM proxy routing model ``bench`` to it (if ``litellm`` can be found and started);
* for every measurement, a separate load-generator process (aiohttp, bounded request count).

It measures, per target: non-streaming latency p50/p99 (and what the gateway adds over
direct), time to first token p50/p99, and requests/s and tokens/s of streamed requests at
concurrency 1, 64 and 256. It prints a table and writes ``docs/benchmarks-gateway.md``.

    python benchmarks/gateway.py                      # everything, default sizes
    python benchmarks/gateway.py --litellm /path/to/venv/bin/litellm
    python benchmarks/gateway.py --quick              # small counts, smoke run

Install the LiteLLM proxy in its own virtualenv so its pins cannot disturb Arena's:
``python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [{"role": "user", "content": "Count to thirty-two."}]
LITELLM_MASTER_KEY = "sk-bench-master"
ARENA_CLI = [sys.executable, "-c", "from arena.cli import app; app()"]


# ---------------------------------------------------------------- the stand-in upstream


def upstream_app(tokens: int) -> Any:
    """A minimal OpenAI-compatible upstream as a raw ASGI app (no framework overhead)."""
    import orjson

    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0}
    head["model"] = "bench-upstream"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(body) + b"\n\n"

    role = chunk({"role": "assistant", "content": ""})
    token_chunks = [chunk({"content": f"t{i} "}) for i in range(tokens)]
    finish = chunk({}, "stop")
    usage = {"prompt_tokens": 6, "completion_tokens": tokens, "total_tokens": 6 + tokens}
    usage_chunk = b"data: " + orjson.dumps({**head, "choices": [], "usage": usage}) + b"\n\n"
    full = orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": "bench-upstream",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(f"t{i} " for i in range(tokens)),
                    },
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
    )
    models = orjson.dumps(
        {"object": "list", "data": [{"id": "bench-upstream", "object": "model", "created": 0}]}
    )
    json_headers = [(b"content-type", b"application/json")]
    sse_headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 200, "headers": json_headers})
            await send({"type": "http.response.body", "body": models})
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(raw)
        if not request.get("stream"):
            await send({"type": "http.response.start", "status": 200, "headers": json_headers})
            await send({"type": "http.response.body", "body": full})
            return
        await send({"type": "http.response.start", "status": 200, "headers": sse_headers})
        await send({"type": "http.response.body", "body": role, "more_body": True})
        for piece in token_chunks:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": finish, "more_body": True})
        if (request.get("stream_options") or {}).get("include_usage"):
            await send({"type": "http.response.body", "body": usage_chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    return app


def run_upstream(port: int, tokens: int) -> None:
    import uvicorn

    uvicorn.run(
        upstream_app(tokens),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        backlog=4096,
    )


# ---------------------------------------------------------------- the load generator


@dataclass
class LoadResult:
    mode: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    tokens: int
    latencies_ms: list[float] = field(default_factory=list)
    ttfts_ms: list[float] = field(default_factory=list)
    first_error: str | None = None


async def _load(
    url: str, model: str, mode: str, concurrency: int, total: int, api_key: str
) -> LoadResult:
    import aiohttp

    stream = mode == "stream"
    body = json.dumps({"model": model, "messages": PROMPT, "stream": stream}).encode()
    headers = {"content-type": "application/json", "authorization": f"Bearer {api_key}"}
    result = LoadResult(mode, concurrency, total, 0, 0.0, 0)
    remaining = total
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)

    async def one(session: aiohttp.ClientSession) -> None:
        started = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {(await response.text())[:200]}")
            if not stream:
                doc = json.loads(await response.read())
                result.tokens += doc["usage"]["completion_tokens"]
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                return
            first = None
            done = False
            async for line in response.content:
                if line.startswith(b"data: [DONE]"):
                    done = True
                    break
                if line.startswith(b'data: {"error"'):
                    raise RuntimeError(line.decode()[:200])
                if b'"content":"' in line and b'"content":""' not in line:
                    if first is None:
                        first = time.perf_counter()
                    result.tokens += 1
            if not done:
                raise RuntimeError("stream ended without [DONE]")
            end = time.perf_counter()
            result.ttfts_ms.append(((first or end) - started) * 1000)
            result.latencies_ms.append((end - started) * 1000)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                await one(session)
            except Exception as e:
                result.errors += 1
                result.first_error = result.first_error or f"{type(e).__name__}: {e}"

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Warm the connection pool and the server's code paths first.
        warm = min(total, max(concurrency, 20))
        remaining = warm
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        result.tokens, result.errors, result.first_error = 0, 0, None
        result.latencies_ms.clear()
        result.ttfts_ms.clear()
        remaining = total
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def run_load(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(
        _load(args.url, args.model, args.mode, args.concurrency, args.requests, args.api_key)
    )
    print(json.dumps(asdict(result)))


# ---------------------------------------------------------------- orchestration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(
    url: str, timeout_s: float, process: subprocess.Popen, api_key: str = "unused"
) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2, headers={"authorization": f"Bearer {api_key}"}).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up within {timeout_s:g}s")


@dataclass
class Target:
    name: str
    chat_url: str
    model: str
    api_key: str = "unused"


def measure(target: Target, mode: str, concurrency: int, requests: int) -> LoadResult:
    command = [
        sys.executable,
        __file__,
        "load",
        "--url",
        target.chat_url,
        "--model",
        target.model,
        "--mode",
        mode,
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--api-key",
        target.api_key,
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    return LoadResult(**json.loads(out.stdout.strip().splitlines()[-1]))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def start_litellm(
    litellm: str | None, upstream_port: int, workdir: Path, logs: list[Any]
) -> tuple[subprocess.Popen | None, Target | None, str]:
    exe = litellm or shutil.which("litellm")
    if exe is None or not Path(exe).exists():
        return None, None, "litellm was not found (pass --litellm PATH); not measured"
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench-upstream\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: sk-upstream\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_MASTER_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  drop_params: true\n"
    )
    port = free_port()
    log = open(workdir / "litellm.log", "w")  # noqa: SIM115
    logs.append(log)
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
    }
    process = subprocess.Popen(
        [exe, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=workdir,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", 180, process)
    except RuntimeError as e:
        process.kill()
        print((workdir / "litellm.log").read_text()[-3000:], file=sys.stderr)
        return None, None, f"the LiteLLM proxy did not start ({e}); not measured"
    version = subprocess.run(
        [str(Path(exe).parent / "python"), "-c", "import importlib.metadata as m;"
         "print(m.version('litellm'))"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    target = Target(
        "litellm", f"http://127.0.0.1:{port}/v1/chat/completions", "bench", LITELLM_MASTER_KEY
    )
    return process, target, f"LiteLLM proxy {version or '(version unknown)'}"


def orchestrate(args: argparse.Namespace) -> None:
    counts = {"latency": args.latency_requests, 1: args.c1_requests}
    counts |= {64: args.c64_requests, 256: args.c256_requests}
    processes: list[subprocess.Popen] = []
    logs: list[Any] = []
    workdir = Path(tempfile.mkdtemp(prefix="arena-bench-"))
    try:
        up_port = free_port()
        upstream = subprocess.Popen(
            [sys.executable, __file__, "upstream", "--port", str(up_port),
             "--tokens", str(args.tokens)],
        )  # fmt: skip
        processes.append(upstream)
        wait_http(f"http://127.0.0.1:{up_port}/v1/models", 30, upstream)

        arena_port = free_port()
        registry = workdir / "arena.yaml"
        registry.write_text(
            "models:\n"
            "  - name: bench\n"
            "    provider: openai_compatible\n"
            f"    base_url: http://127.0.0.1:{up_port}/v1\n"
            "    upstream_model: bench-upstream\n"
        )
        env = {**os.environ, "ARENA_DATA_DIR": str(workdir / "data")}
        # Both gateways check a key on every request (LiteLLM its master key, Arena an API
        # key from its database through the in-memory cache).
        created = subprocess.run(
            [*ARENA_CLI, "keys", "create", "bench"],
            env=env, cwd=workdir, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        arena_key = created.strip().splitlines()[-1]
        arena_log = open(workdir / "arena.log", "w")  # noqa: SIM115
        logs.append(arena_log)
        arena = subprocess.Popen(
            [*ARENA_CLI, "serve",
             "--host", "127.0.0.1", "--port", str(arena_port), "--config", str(registry),
             "--log-level", "warning"],
            env=env, stdout=arena_log, stderr=subprocess.STDOUT, cwd=workdir,
        )  # fmt: skip
        processes.append(arena)
        wait_http(f"http://127.0.0.1:{arena_port}/health", 60, arena, arena_key)

        targets = [
            Target("direct", f"http://127.0.0.1:{up_port}/v1/chat/completions", "bench-upstream"),
            Target(
                "arena", f"http://127.0.0.1:{arena_port}/v1/chat/completions", "bench", arena_key
            ),
        ]
        litellm_process, litellm_target, litellm_note = start_litellm(
            args.litellm, up_port, workdir, logs
        )
        if litellm_process is not None:
            processes.append(litellm_process)
        if litellm_target is not None:
            targets.append(litellm_target)
        print(f"LiteLLM: {litellm_note}", flush=True)

        # Added latency as the median over interleaved rounds (direct, arena, arena, direct,
        # ...), so a burst of load from other jobs hits both sides alike.
        added_rounds: list[float] = []
        for i in range(args.rounds):
            order = targets[:2] if i % 2 == 0 else targets[1::-1]
            p50 = {t.name: pct(measure(t, "chat", 1, args.round_requests).latencies_ms, 50)
                   for t in order}  # fmt: skip
            added_rounds.append(p50["arena"] - p50["direct"])
        print(f"added p50 per round (ms): {[round(a, 3) for a in added_rounds]}", flush=True)

        results: dict[str, dict[str, LoadResult]] = {}
        for target in targets:
            row: dict[str, LoadResult] = {}
            print(f"measuring {target.name} ...", flush=True)
            row["latency"] = measure(target, "chat", 1, counts["latency"])
            for concurrency in (1, 64, 256):
                row[f"c{concurrency}"] = measure(target, "stream", concurrency, counts[concurrency])
            for key, r in row.items():
                if r.errors:
                    print(f"  {target.name} {key}: {r.errors} errors, first: {r.first_error}")
            results[target.name] = row
        report(results, args, litellm_note, added_rounds)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def report(
    results: dict[str, dict[str, LoadResult]],
    args: argparse.Namespace,
    note: str,
    added_rounds: list[float],
) -> None:
    from rich.console import Console
    from rich.table import Table

    direct = results["direct"]
    d50 = pct(direct["latency"].latencies_ms, 50)
    d99 = pct(direct["latency"].latencies_ms, 99)
    header = [
        "target",
        "latency p50 ms",
        "p99 ms",
        "added p50 ms",
        "added p99 ms",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "req/s c=1",
        "req/s c=64",
        "req/s c=256",
        "tok/s c=256",
        "errors",
    ]
    rows = []
    for name, row in results.items():
        lat = row["latency"].latencies_ms
        ttft = row["c1"].ttfts_ms
        rps = {c: row[f"c{c}"].requests / row[f"c{c}"].seconds for c in (1, 64, 256)}
        tps = row["c256"].tokens / row["c256"].seconds
        errors = sum(r.errors for r in row.values())
        rows.append(
            [
                name,
                f"{pct(lat, 50):.2f}",
                f"{pct(lat, 99):.2f}",
                "-" if name == "direct" else f"{pct(lat, 50) - d50:+.2f}",
                "-" if name == "direct" else f"{pct(lat, 99) - d99:+.2f}",
                f"{pct(ttft, 50):.2f}",
                f"{pct(ttft, 99):.2f}",
                f"{rps[1]:.0f}",
                f"{rps[64]:.0f}",
                f"{rps[256]:.0f}",
                f"{tps:.0f}",
                str(errors),
            ]
        )
    ratios = []
    if "litellm" in results:
        for c in (1, 64, 256):
            a, b = results["arena"][f"c{c}"], results["litellm"][f"c{c}"]
            ratios.append((c, (a.requests / a.seconds) / (b.requests / b.seconds)))
    table = Table(title=f"Gateway overhead ({args.tokens} streamed tokens per request)")
    for h in header:
        table.add_column(h, justify="right" if h != "target" else "left")
    for r in rows:
        table.add_row(*r)
    console = Console(width=200)
    console.print(table)
    for c, ratio in ratios:
        console.print(f"Arena / LiteLLM throughput at concurrency {c}: {ratio:.2f}x")

    load = os.getloadavg()
    lines = [
        "# Gateway benchmark",
        "",
        "Measured with:",
        "",
        "```",
        "python benchmarks/gateway.py " + " ".join(sys.argv[1:]),
        "```",
        "",
        f"Stand-in upstream streaming {args.tokens} tokens per request as fast as it can "
        "(raw ASGI on uvicorn + uvloop + httptools); `arena serve` (one process, uvloop + "
        "httptools) and the LiteLLM proxy (one process) route model `bench` to it. Each "
        "measurement runs in a fresh aiohttp load-generator process after a warm-up; counts: "
        f"{args.latency_requests} non-streaming requests at concurrency 1 for latency, "
        f"{args.c1_requests}/{args.c64_requests}/{args.c256_requests} streamed requests at "
        "concurrency 1/64/256. TTFT is from the concurrency-1 streaming run.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs "
        f"(load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}); the "
        "upstream, the gateway under test and the load generator all share those cores, "
        "so absolute figures are pessimistic and ratios are the meaningful part. "
        f"Python {platform.python_version()}. {note}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]
    for c, ratio in ratios:
        lines.append(f"- Arena / LiteLLM streamed throughput at concurrency {c}: **{ratio:.2f}x**")
    a50 = pct(results["arena"]["latency"].latencies_ms, 50) - d50
    lines += [
        f"- Arena adds {a50:.2f} ms at p50 over direct in the single run in the table.",
        f"- Arena adds **{statistics.median(added_rounds):.2f} ms** at p50 over direct: the "
        f"median of {len(added_rounds)} interleaved rounds of {args.round_requests} "
        "non-streaming requests each (per round: "
        + ", ".join(f"{a:.2f}" for a in added_rounds)
        + " ms; target: at most 1 ms).",
        "",
        "Targets: Arena's gateway adds at most 1 ms at p50 over direct, and sustains at least "
        "2x LiteLLM's throughput at concurrency 256.",
        "",
    ]
    if args.write:
        out = ROOT / "docs" / "benchmarks-gateway.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text("\n".join(lines))
        console.print(f"wrote {out}")
    raw = {n: {k: {**asdict(v), "latencies_ms": None, "ttfts_ms": None} for k, v in row.items()}
           for n, row in results.items()}  # fmt: skip
    print(json.dumps(raw)[:4000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    up = sub.add_parser("upstream", help="(internal) run the stand-in upstream")
    up.add_argument("--port", type=int, required=True)
    up.add_argument("--tokens", type=int, default=32)
    load = sub.add_parser("load", help="(internal) run one load-generator measurement")
    load.add_argument("--url", required=True)
    load.add_argument("--model", required=True)
    load.add_argument("--mode", choices=["chat", "stream"], required=True)
    load.add_argument("--concurrency", type=int, required=True)
    load.add_argument("--requests", type=int, required=True)
    load.add_argument("--api-key", default="unused")
    parser.add_argument("--tokens", type=int, default=32, help="Tokens per streamed answer.")
    parser.add_argument("--litellm", help="Path to the litellm executable.")
    parser.add_argument("--latency-requests", type=int, default=1000)
    parser.add_argument("--c1-requests", type=int, default=500)
    parser.add_argument("--c64-requests", type=int, default=3000)
    parser.add_argument("--c256-requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7, help="Interleaved latency rounds.")
    parser.add_argument("--round-requests", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="Small counts (smoke run).")
    parser.add_argument("--no-write", dest="write", action="store_false")
    args = parser.parse_args()
    if args.command == "upstream":
        run_upstream(args.port, args.tokens)
    elif args.command == "load":
        run_load(args)
    else:
        if args.quick:
            args.latency_requests, args.c1_requests = 100, 50
            args.rounds, args.round_requests = 3, 100
            args.c64_requests, args.c256_requests = 300, 600
            args.write = False
        orchestrate(args)


if __name__ == "__main__":
    main()
