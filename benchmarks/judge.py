"""Judging throughput against a stand-in judge with a fixed latency.

The judge is a real HTTP server on loopback in a separate process (uvicorn, a bare ASGI
app) that speaks the OpenAI chat-completions streaming format and answers every request
after exactly the ``--latency-ms`` latency (each value in turn) with a short judgment
ending in a verdict. The client is the real pipeline: ``arena.judge.grading.grade`` in
single mode with the real MT-Bench questions and judge prompts, the judge reached through
the real ``openai_compatible`` provider on the shared HTTP client the judge commands use
(``arena.judge.clients``: one shared aiohttp ``UpstreamClient``),
the judge-call cache on, rows appended to a JSONL file.

For each concurrency it reports judgments per second and two overhead figures:

- ``overhead vs ideal = 1 - measured / ideal`` judgments per second, ideal being
  ``concurrency / latency``: the share of wall time not explained by the judge's own
  latency (client, HTTP and server costs);
- ``outside calls = 1 - sum(call time) / (concurrency * wall)``: the share of slot time
  spent outside the provider call (prompt building, parsing, cache, file writes,
  scheduling), measured by instrumenting each call;
- ``pipeline overhead (wall) = 1 - wall(calls only) / wall``: the same judge calls (same
  rendered prompts, same provider, same concurrency) made bare, without the pipeline around
  them, compared with the full run. This also catches pipeline CPU work that slows other
  calls down by holding the event loop, which the per-call instrumentation cannot see;
- ``pipeline share of client CPU = 1 - cpu(calls only) / cpu(full)``: the same comparison
  in CPU time of the client process, which other processes' load barely disturbs.

Bare and full runs alternate (``--repeat`` rounds, medians reported), each full run with a
fresh cache so every judgment is a real call.

    python benchmarks/judge.py --latency-ms 50 1000 --concurrency 1 16 64

Needs the MT-Bench data from /work/shared/data/mt_bench (or pass --questions/--prompts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mt_bench"


def serve_judge(latency: float, port_queue: mp.Queue) -> None:
    """The stand-in judge (runs in its own process)."""
    import uvicorn

    verdict = "The answer is relevant and accurate, with minor omissions. Rating: [[7]]"
    words = verdict.split(" ")

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        await asyncio.sleep(latency)
        base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0}
        base["model"] = request.get("model", "judge")
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
        ]
        for i, word in enumerate(words):
            piece = word + (" " if i < len(words) - 1 else "")
            chunks.append({**base, "choices": [{"index": 0, "delta": {"content": piece}}]})
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        usage = {"prompt_tokens": len(body) // 4, "completion_tokens": len(words)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        chunks.append({**base, "choices": [], "usage": usage})
        payload = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
        payload += b"data: [DONE]\n\n"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port_queue.put(sock.getsockname()[1])
    config = uvicorn.Config(
        app, log_level="error", access_log=False, backlog=2048, timeout_keep_alive=60
    )
    uvicorn.Server(config).run(sockets=[sock])


def start_judge(latency: float) -> tuple[mp.Process, str]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=serve_judge, args=(latency, queue), daemon=True)
    process.start()
    port = queue.get(timeout=30)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.post(url + "/v1/chat/completions", json={"model": "warm"}, timeout=5)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return process, url


async def run_once(
    url: str,
    n: int,
    concurrency: int,
    clients: int,
    questions_path: Path,
    prompts_path: Path,
    work: Path,
    repeat: int,
) -> dict[str, float]:
    from arena.config import Settings
    from arena.judge.benchmark_files import (
        ModelAnswer,
        load_judge_prompts,
        load_questions,
    )
    from arena.judge.cache import JudgeCache
    from arena.judge.calls import JudgeCaller, RetryPolicy
    from arena.judge.clients import make_judge_client
    from arena.judge.grading import Grader, Mode, grade, plan_tasks
    from arena.judge.prompts import PromptBook
    from arena.providers.openai_compat import OpenAICompatProvider

    questions = load_questions(questions_path)
    per_model = sum(len(q.turns) for q in questions)
    n_models = -(-n // per_model)
    answers = {
        f"model-{m}": {
            q.key: ModelAnswer(
                q.question_id,
                f"model-{m}",
                tuple(f"Answer {m} to turn {t + 1}: " + "lorem ipsum " * 60 for t in range(2)),
            )
            for q in questions
        }
        for m in range(n_models)
    }
    tasks, _ = plan_tasks(Mode.SINGLE, questions, answers, sorted(answers))
    tasks = tasks[:n]
    grader = Grader(Mode.SINGLE, PromptBook(load_judge_prompts(prompts_path)), answers)
    shared = [make_judge_client(Settings()) for _ in range(clients)]
    providers = [
        OpenAICompatProvider(base_url=url + "/v1", upstream_model="judge", client=client)
        for client in shared
    ]
    cache = JudgeCache(work / f"cache-{concurrency}-{clients}.sqlite")
    caller = JudgeCaller(
        "judge",
        providers,
        params={"temperature": 0.0, "max_tokens": 512},
        cache=cache,
        policy=RetryPolicy(attempts=2, timeout_s=300),
    )
    walls, bare_walls, cpus, bare_cpus, call_seconds = [], [], [], [], []
    for round_ in range(repeat):
        # Alternate bare and full runs so that load from other processes hits both alike.
        cpu = time.process_time()
        bare_walls.append(await calls_only(providers, grader, tasks, concurrency))
        bare_cpus.append(time.process_time() - cpu)
        out = work / f"judgments-{concurrency}-{clients}-{round_}.jsonl"
        cpu = time.process_time()
        started = time.perf_counter()
        summary = await grade(
            grader, tasks, [caller], out, concurrency=concurrency, show_progress=False
        )
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        call_seconds.append(summary.judge_seconds)
        assert summary.statuses == {"ok": n}, summary.statuses
        # A fresh cache each round, or later rounds would never call the judge.
        cache.close()
        cache = JudgeCache(work / f"cache-{concurrency}-{clients}-{round_ + 1}.sqlite")
        caller.cache = cache
    for provider in providers:
        await provider.aclose()
    for client in shared:
        await client.close()
    cache.close()
    median = statistics.median
    best = min(range(repeat), key=lambda i: walls[i])
    return {
        "n": n,
        "wall": median(walls),
        "call_seconds": call_seconds[best] * median(walls) / walls[best],
        "bare_wall": median(bare_walls),
        "cpu": median(cpus),
        "bare_cpu": median(bare_cpus),
    }


async def calls_only(providers, grader, tasks, concurrency: int) -> float:
    """The same judge calls without the pipeline: pre-rendered prompts, a bare worker pool."""
    from arena.judge.calls import chat_once

    queue = iter(enumerate([grader.single_messages(task) for task in tasks]))
    params = {"temperature": 0.0, "max_tokens": 512}

    async def worker() -> None:
        for i, messages in queue:
            provider = providers[i % len(providers)]
            await chat_once(provider, "judge", messages, params, timeout_s=300)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return time.perf_counter() - started


async def pipeline_alone(
    n: int, concurrency: int, questions_path: Path, prompts_path: Path, work: Path
) -> float:
    """CPU seconds per judgment of the pipeline with an in-process judge that answers at
    once (no HTTP): the pipeline's own cost, cache and file writes included."""
    from arena.judge.benchmark_files import ModelAnswer, load_judge_prompts, load_questions
    from arena.judge.cache import JudgeCache
    from arena.judge.calls import JudgeCaller
    from arena.judge.grading import Grader, Mode, grade, plan_tasks
    from arena.judge.prompts import PromptBook
    from arena.providers.base import Delta, Provider, ProviderInfo, TokenUsage

    class InstantJudge(Provider):
        info = ProviderInfo(kind="instant", upstream_model="judge")

        async def stream_chat(self, request):
            yield Delta(text="The answer is relevant and accurate. Rating: [[7]]")
            yield Delta(finish_reason="stop")
            yield Delta(usage=TokenUsage(prompt_tokens=900, completion_tokens=12))

    questions = load_questions(questions_path)
    n_models = -(-n // sum(len(q.turns) for q in questions))
    answers = {
        f"m{m}": {
            q.key: ModelAnswer(
                q.question_id, f"m{m}", tuple(f"Answer {m}: " + "lorem ipsum " * 60 for _ in "ab")
            )
            for q in questions
        }
        for m in range(n_models)
    }
    tasks, _ = plan_tasks(Mode.SINGLE, questions, answers, sorted(answers))
    grader = Grader(Mode.SINGLE, PromptBook(load_judge_prompts(prompts_path)), answers)
    cache = JudgeCache(work / "cache-alone.sqlite")
    caller = JudgeCaller("judge", InstantJudge(), params={"temperature": 0.0}, cache=cache)
    cpu = time.process_time()
    await grade(
        grader, tasks[:n], [caller], work / "alone.jsonl", concurrency=concurrency,
        show_progress=False,
    )  # fmt: skip
    used = time.process_time() - cpu
    cache.close()
    return used / n


def run_latency(args, latency: float, loop_factory) -> list[dict]:
    process, url = start_judge(latency)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = [(c, max(1, k)) for c in args.concurrency for k in args.clients]
            for c, k in dict.fromkeys(runs):
                n = max(args.min_judgments, int(args.seconds * c / latency))
                with asyncio.Runner(loop_factory=loop_factory) as runner:
                    result = runner.run(
                        run_once(url, n, c, k, args.questions, args.prompts, Path(tmp), args.repeat)
                    )
                ideal = n * latency / c
                wall = result["wall"]
                rows.append(
                    {
                        "concurrency": c,
                        "clients": k,
                        "judgments": n,
                        "wall_s": wall,
                        "per_s": n / wall,
                        "ideal_per_s": c / latency,
                        "overhead": 1 - ideal / wall,
                        "outside_calls": 1 - result["call_seconds"] / (c * wall),
                        "mean_call_ms": 1000 * result["call_seconds"] / n,
                        "bare_per_s": n / result["bare_wall"],
                        "pipeline_overhead": 1 - result["bare_wall"] / wall,
                        "cpu_ms": 1000 * result["cpu"] / n,
                        "bare_cpu_ms": 1000 * result["bare_cpu"] / n,
                        "cpu_share": 1 - result["bare_cpu"] / result["cpu"],
                        "load": os.getloadavg()[0],
                    }
                )
    finally:
        process.terminate()
        process.join(timeout=10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--latency-ms", type=float, nargs="+", default=[50.0, 1000.0], help="Judge latencies."
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[1],
        help="Shared HTTP clients the judge calls are spread over (the CLI's --judge-clients).",
    )
    parser.add_argument(
        "--seconds", type=float, default=4.0, help="Ideal duration per concurrency level."
    )
    parser.add_argument(
        "--min-judgments", type=int, default=20, help="Judgments per run at the least."
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="Rounds per setting (medians are reported)."
    )
    parser.add_argument("--questions", type=Path, default=DATA / "question.jsonl")
    parser.add_argument("--prompts", type=Path, default=DATA / "judge_prompts.jsonl")
    args = parser.parse_args()

    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    tables = [(ms, run_latency(args, ms / 1000, loop_factory)) for ms in args.latency_ms]
    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner(loop_factory=loop_factory) as r:
        alone = r.run(pipeline_alone(4000, 64, args.questions, args.prompts, Path(tmp)))
    print(f"pipeline alone (instant in-process judge, concurrency 64): {alone * 1e6:.0f} us CPU")
    print(f"python {sys.version.split()[0]}; medians of {args.repeat} rounds")
    for ms, rows in tables:
        print(f"\njudge latency {ms:.0f} ms")
        print(
            "| concurrency | clients | judgments | wall (s) | judgments/s | ideal/s "
            "| overhead vs ideal | outside calls | mean call (ms) | calls only/s "
            "| pipeline overhead (wall) | client CPU ms/judgment (full / calls only) "
            "| pipeline share of client CPU | load avg |"
        )
        print("|" + "---:|" * 14)
        for r in rows:
            print(
                f"| {r['concurrency']} | {r['clients']} | {r['judgments']} | {r['wall_s']:.2f} "
                f"| {r['per_s']:.1f} | {r['ideal_per_s']:.1f} | {r['overhead']:.1%} "
                f"| {r['outside_calls']:.1%} | {r['mean_call_ms']:.1f} | {r['bare_per_s']:.1f} "
                f"| {r['pipeline_overhead']:.1%} | {r['cpu_ms']:.2f} / {r['bare_cpu_ms']:.2f} "
                f"| {r['cpu_share']:.1%} | {r['load']:.1f} |"
            )


if __name__ == "__main__":
    main()
