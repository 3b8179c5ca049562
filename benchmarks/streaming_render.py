"""CPU cost of rendering an answer's markdown while it streams (``turn_frames.LiveMarkdown``).

A long markdown answer (headings, lists, code, TeX) is fed in small deltas at a set model
pace on a simulated clock that also advances by each render's real cost. Reported for each
peer: renders sent, render CPU seconds, and that CPU as a share of the stream's duration.
The peers, in the same run: the throttle as shipped (150 ms, widened to 8x the last
render's cost), a fixed 150 ms throttle, and a render after every delta.

    python benchmarks/streaming_render.py --chars 16000 --chars-per-s 200
"""

from __future__ import annotations

import argparse
import asyncio
import time

from arena.web.markdown import render_markdown
from arena.web.turn_frames import LiveMarkdown

BLOCK = (
    "## Section\n\nSome **bold** text with `code`, a [link](https://example.org) and "
    "$a^2 + b^2 = c^2$.\n\n- item one\n- item two\n\n"
    "```python\ndef double(x):\n    return x * 2  # comment\n```\n\n"
)


class SimClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def run(
    text: str, chars_per_delta: int, delta_s: float, live_kwargs: dict
) -> tuple[int, float]:
    clock = SimClock()
    spent = 0.0

    def timed_render(md: str) -> str:
        nonlocal spent
        start = time.perf_counter()
        html = render_markdown(md)
        took = time.perf_counter() - start
        spent += took
        clock.now += took
        return html

    # No worker thread: the benchmark measures render CPU, not the hop.
    live = LiveMarkdown(
        clock=clock, render=timed_render, thread_from_chars=len(text) + 1, **live_kwargs
    )
    renders = 0
    for start in range(0, len(text), chars_per_delta):
        clock.now += delta_s
        live.add("a", text[start : start + chars_per_delta])
        renders += len(await live.due_frames())
    return renders, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=16_000)
    parser.add_argument("--chars-per-s", type=float, default=200.0, help="model pace")
    parser.add_argument("--chars-per-delta", type=int, default=4)
    args = parser.parse_args()
    text = (BLOCK * (args.chars // len(BLOCK) + 1))[: args.chars]
    delta_s = args.chars_per_delta / args.chars_per_s
    duration = len(text) / args.chars_per_s
    peers = {
        "shipped (150 ms, >= 8x cost)": {},
        "fixed 150 ms": {"cost_factor": 0.0},
        "every delta": {"min_interval_s": 0.0, "cost_factor": 0.0},
    }
    print(f"{len(text)} chars at {args.chars_per_s:g} chars/s ({duration:.0f} s of streaming)")
    baseline = None
    for name, kwargs in peers.items():
        renders, spent = asyncio.run(run(text, args.chars_per_delta, delta_s, kwargs))
        baseline = baseline or spent
        print(
            f"{name:30s} renders {renders:6d}  cpu {spent:7.2f} s  "
            f"{100 * spent / duration:5.1f}% of a core  x{spent / baseline:.1f} vs shipped"
        )


if __name__ == "__main__":
    main()
