"""The labeller call behind every LLM tagger: ``ask(prompt) -> answer text``.

LLM taggers (``pipeline/llm_taggers.py``) only write prompts and read verdicts; how a prompt
reaches a model lives here. A labeller is any model of the model registry (the default one
``arena serve`` uses, or a ``--config`` file), reached through Arena's providers exactly as
the judge reaches its judges: the judge's ``JudgeCaller`` supplies the on-disk answer cache
keyed by (model, prompt, parameters) hash, so a rerun costs no calls, and tenacity retries on
transient upstream failures (429 with its Retry-After, 5xx, timeouts, dropped connections).
What this module adds is the bound on calls in flight, temperature 0, one exception
(``LabellerCallFailed``) when a call still fails, which the taggers record as an ``error`` tag,
and the labeller's identity in the stored tag versions (``for_model``): tags that another
model gave are not current, so switching the labeller re-labels.

    labeller = open_labeller("gpt-4o-mini", config=Path("arena.yaml"))
    try:
        tags = await tagger.run(record, labeller.ask)
    finally:
        await labeller.aclose()
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arena.judge.cache import JudgeCache
from arena.judge.calls import JudgeCaller, RetryPolicy
from arena.pipeline.tags import LabellerTagger

Ask = Callable[[str], Awaitable[str]]

DEFAULT_CONCURRENCY = 16
DEFAULT_MAX_TOKENS = 1024
CACHE_FILE = "labeller-cache.sqlite"
VERSION_CHARS = 32  # battle_tags.version holds this many


def model_version(version: str, model: str) -> str:
    """A tagger ``version`` as stored for answers of labeller ``model``: the version, a dash
    and 8 hex digits of the model name's hash (the whole hashed when that would not fit)."""
    digest = hashlib.sha256(model.encode("utf-8")).hexdigest()[:8]
    if len(version) + 9 > VERSION_CHARS:
        version = hashlib.sha256(version.encode("utf-8")).hexdigest()[: VERSION_CHARS - 9]
    return f"{version}-{digest}"


def for_model(taggers: Iterable[LabellerTagger], model: str) -> tuple[LabellerTagger, ...]:
    """``taggers`` with their versions tied to ``model`` (see :func:`model_version`)."""
    return tuple(dataclasses.replace(t, version=model_version(t.version, model)) for t in taggers)


class LabellerCallFailed(RuntimeError):
    """The labeller gave no answer after its retries (the message says why)."""


@dataclass
class LabellerStats:
    """What the calls cost: ``calls`` asked, ``cached`` answered from disk, ``failed`` after
    retries, ``attempts`` sent upstream (retries included), ``peak_in_flight`` observed."""

    calls: int = 0
    cached: int = 0
    failed: int = 0
    attempts: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0


def make_ask(caller: JudgeCaller, *, concurrency: int, stats: LabellerStats | None = None) -> Ask:
    """``ask(prompt)``: one user message to ``caller``'s model, at most ``concurrency`` calls
    at once (cache hits included, they are cheap); raises ``LabellerCallFailed``."""
    if concurrency < 1:
        raise ValueError("labeller concurrency must be at least 1")
    counts = stats if stats is not None else LabellerStats()
    # One semaphore per event loop: a command may label in several ``asyncio.run`` calls,
    # and a semaphore that once waited is bound to the loop it waited on.
    gates: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def gate() -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop not in gates:
            for old in [k for k in gates if k.is_closed()]:
                del gates[old]
            gates[loop] = asyncio.Semaphore(concurrency)
        return gates[loop]

    async def ask(prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        async with gate():
            counts.calls += 1
            counts.in_flight += 1
            counts.peak_in_flight = max(counts.peak_in_flight, counts.in_flight)
            try:
                outcome = await caller.call(messages)
            finally:
                counts.in_flight -= 1
        counts.attempts += outcome.attempts
        counts.cached += outcome.cached
        if outcome.text is None:
            counts.failed += 1
            raise LabellerCallFailed(outcome.error or "the labeller gave no answer")
        return outcome.text

    return ask


@dataclass
class Labeller:
    """A labeller model ready to ask; ``aclose`` closes its providers and flushes the cache."""

    model: str
    ask: Ask
    stats: LabellerStats
    cache: JudgeCache | None = None
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        try:
            for close in self._closers:
                await close()
        finally:
            if self.cache is not None:
                self.cache.close()


def labeller_params(max_tokens: int = DEFAULT_MAX_TOKENS) -> dict[str, Any]:
    """Generation parameters of every labeller call: deterministic, bounded length."""
    return {"temperature": 0.0, "max_tokens": max_tokens}


def labeller_from_provider(
    model: str,
    provider: Any,
    *,
    cache_path: Path | None,
    concurrency: int = DEFAULT_CONCURRENCY,
    policy: RetryPolicy | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> Labeller:
    """A labeller over a provider the caller built (tests, or a server's own providers);
    ``cache_path`` None means no cache."""
    cache = JudgeCache(cache_path) if cache_path is not None else None
    caller = JudgeCaller(
        model, provider, params=labeller_params(max_tokens), cache=cache, policy=policy
    )
    stats = LabellerStats()
    return Labeller(model, make_ask(caller, concurrency=concurrency, stats=stats), stats, cache)


def open_labeller(
    model: str,
    *,
    config: Path | None = None,
    cache_path: Path | bool | None = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    policy: RetryPolicy | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> Labeller:
    """The labeller ``model`` from the registry (``config``, else ``ARENA_CONFIG_PATH`` or
    ./arena.yaml, else the default registry of ``arena serve``).

    ``cache_path``: True for ``<data_dir>/labeller-cache.sqlite``, a path, or None/False
    for no cache. For CLI use: an unknown model or an unreadable registry prints the
    judge commands' message and raises ``typer.Exit(2)``.
    """
    from arena.judge.cli_support import build_providers

    if concurrency < 1:
        raise ValueError("labeller concurrency must be at least 1")
    providers = build_providers([model], config)
    if cache_path is True:
        from arena.config import Settings

        cache_path = Settings().data_dir / CACHE_FILE
    labeller = labeller_from_provider(
        model,
        providers[model],
        cache_path=cache_path or None,
        concurrency=concurrency,
        policy=policy,
        max_tokens=max_tokens,
    )
    labeller._closers.append(providers.aclose)
    return labeller
