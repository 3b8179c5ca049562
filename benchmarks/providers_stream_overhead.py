"""Per-chunk cost of the OpenAI-compatible adapter over reading the same stream directly.

Starts the OpenAI stand-in on loopback (no token delay), streams TOKENS chunks per request
and compares: bare httpx + httpx-sse (+ json.loads), ``stream_chat_raw`` and ``stream_chat``.
Prints median microseconds per chunk and per request. Run:

    python benchmarks/providers_stream_overhead.py [tokens] [rounds]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx
from httpx_sse import aconnect_sse

from arena.protocol import ChatCompletionRequest
from arena.providers.openai_compat import OpenAICompatProvider
from support import openai_standin
from support.servers import StandinConfig, serve_app


async def main(tokens: int, rounds: int) -> None:
    config = StandinConfig(token_count=tokens)
    with serve_app(openai_standin.create_app(config)) as url:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        request = ChatCompletionRequest(**body)
        provider = OpenAICompatProvider(base_url=url + "/v1", upstream_model="m")
        async with httpx.AsyncClient() as client:

            async def direct() -> int:
                n = 0
                async with aconnect_sse(
                    client, "POST", url + "/v1/chat/completions", json=body
                ) as es:
                    async for event in es.aiter_sse():
                        if event.data != "[DONE]":
                            json.loads(event.data)
                            n += 1
                return n

            async def raw() -> int:
                return len([c async for c in provider.stream_chat_raw(request)])

            async def deltas() -> int:
                return len([d async for d in provider.stream_chat(request)])

            results: dict[str, list[float]] = {"direct": [], "raw": [], "deltas": []}
            for _ in range(2):  # warm-up
                for fn in (direct, raw, deltas):
                    await fn()
            for _ in range(rounds):
                for name, fn in (("direct", direct), ("raw", raw), ("deltas", deltas)):
                    start = time.perf_counter()
                    await fn()
                    results[name].append(time.perf_counter() - start)
        await provider.aclose()
    base = statistics.median(results["direct"])
    print(f"{tokens} chunks per request, {rounds} rounds, median")
    for name, times in results.items():
        med = statistics.median(times)
        print(
            f"  {name:7s} {med * 1e3:8.2f} ms/request  {med / tokens * 1e6:6.1f} us/chunk  "
            f"(+{(med - base) / tokens * 1e6:5.1f} us/chunk, "
            f"{(med - base) * 1e3:+.2f} ms/request vs direct)"
        )


if __name__ == "__main__":
    tokens = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    asyncio.run(main(tokens, rounds))
