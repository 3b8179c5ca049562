"""One model call through a Provider, and one judge verdict with caching and retries.

``chat_once`` folds a provider's streamed deltas into text and token usage under a time
limit. ``JudgeCaller`` adds what judging needs: the content-addressed cache, retries with
exponential backoff (tenacity) on upstream failures and timeouts, and — through
``judge_verdict`` — fresh samples when the verdict cannot be parsed. Whatever happens, a call
ends in a ``Verdict`` whose ``status`` says so; it never raises into the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from arena.errors import ArenaError, BadRequest, RateLimited
from arena.judge.cache import JudgeCache, cache_key
from arena.judge.verdicts import Scale, parse_verdict
from arena.protocol import ChatCompletionRequest
from arena.providers.base import Provider

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ChatResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    usage_reported: bool


def estimate_tokens(text: str) -> int:
    """Token count when the upstream reports none: the pipeline's documented approximation."""
    try:
        from arena.pipeline.markdown_stats import approx_token_count
    except ImportError:  # the pipeline module is optional for judging
        return max(1, len(text) // 4) if text else 0
    return approx_token_count(text)


async def chat_once(
    provider: Provider,
    model: str,
    messages: list[dict[str, Any]],
    params: dict[str, Any],
    *,
    timeout_s: float | None,
) -> ChatResult:
    """Stream one chat answer and fold it; raises the provider's typed errors or TimeoutError."""
    request = ChatCompletionRequest(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        **params,
    )
    parts: list[str] = []
    usage = None
    async with asyncio.timeout(timeout_s):
        # aclosing: a timeout must also close the provider's stream (and its connection).
        async with contextlib.aclosing(provider.stream_chat(request)) as stream:
            async for delta in stream:
                if delta.index == 0 and delta.text:
                    parts.append(delta.text)
                if delta.usage is not None:
                    usage = delta.usage
    text = "".join(parts)
    if usage is not None:
        return ChatResult(text, usage.prompt_tokens, usage.completion_tokens, True)
    prompt_text = "\n".join(str(m.get("content", "")) for m in messages)
    return ChatResult(text, estimate_tokens(prompt_text), estimate_tokens(text), False)


def is_transient(error: BaseException) -> bool:
    """Worth another try: upstream errors, timeouts, rate limits, dropped connections.

    A refused request (``BadRequest``: bad input, context too long) would fail again.
    """
    if isinstance(error, BadRequest):
        return False
    return isinstance(error, ArenaError | TimeoutError | OSError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    timeout_s: float | None = 120.0


def backoff_delay(policy: RetryPolicy, failed_attempts: int, error: BaseException | None) -> float:
    """Seconds to wait after ``failed_attempts`` failures: exponential with jitter, and at
    least what the upstream asked for when it rate-limited us (``Retry-After``)."""
    delay = min(policy.max_backoff_s, policy.initial_backoff_s * 2 ** (failed_attempts - 1))
    delay += random.uniform(0, policy.initial_backoff_s)
    if isinstance(error, RateLimited):
        delay = max(delay, min(error.retry_after_s, policy.max_backoff_s))
    return delay


def retrying(policy: RetryPolicy, *, already_failed: int = 0) -> AsyncRetrying:
    """Tenacity's async retry loop: transient errors only, ``backoff_delay`` between tries."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return backoff_delay(policy, already_failed + state.attempt_number, error)

    return AsyncRetrying(
        stop=stop_after_attempt(max(1, policy.attempts - already_failed)),
        wait=wait,
        retry=retry_if_exception(is_transient),
        reraise=True,
    )


async def with_retries(
    make_call: Callable[[], Awaitable[T]], policy: RetryPolicy, attempts: list[int]
) -> T:
    """``make_call()`` with retries; ``attempts[0]`` counts the tries (also when it raises).

    The first try runs straight away and tenacity's loop is built only after a transient
    failure: its per-attempt bookkeeping costs about 0.1 ms, a third of the pipeline's own
    CPU per judgment, and almost every call succeeds at once.
    """
    attempts[0] += 1
    try:
        return await make_call()
    except Exception as error:
        if policy.attempts <= 1 or not is_transient(error):
            raise
        first_error = error
    await asyncio.sleep(backoff_delay(policy, 1, first_error))
    async for attempt in retrying(policy, already_failed=1):
        with attempt:
            attempts[0] += 1
            result = await make_call()
    return result


@dataclass(frozen=True, slots=True)
class CallOutcome:
    text: str | None
    error: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    cached: bool = False
    seconds: float = 0.0


class JudgeCaller:
    """Calls one judge model. Safe to share between concurrent tasks.

    ``provider`` may be several instances of the same judge (each on its own HTTP client);
    calls go to them in turn, spreading connections over several pools. With the shared
    aiohttp-backed client one instance is enough (see docs/benchmarks-judge.md).
    """

    def __init__(
        self,
        name: str,
        provider: Provider | Sequence[Provider],
        *,
        params: dict[str, Any] | None = None,
        cache: JudgeCache | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.providers = list(provider) if isinstance(provider, Sequence) else [provider]
        if not self.providers:
            raise ValueError("a judge needs at least one provider")
        self._turn = itertools.count()
        self.params = dict(params or {})
        self.cache = cache
        self.policy = policy or RetryPolicy()

    async def call(self, messages: list[dict[str, Any]], sample: int = 0) -> CallOutcome:
        key = cache_key(self.name, messages, self.params, sample)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return CallOutcome(
                    hit.text, None, hit.prompt_tokens, hit.completion_tokens, 0, cached=True
                )
        policy = self.policy
        attempts = [0]
        started = time.perf_counter()

        def make_call() -> Awaitable[ChatResult]:
            provider = self.providers[next(self._turn) % len(self.providers)]
            return chat_once(provider, self.name, messages, self.params, timeout_s=policy.timeout_s)

        try:
            result = await with_retries(make_call, policy, attempts)
        except TimeoutError:
            return CallOutcome(
                None,
                f"timeout after {policy.timeout_s}s ({attempts[0]} attempts)",
                attempts=attempts[0],
                seconds=time.perf_counter() - started,
            )
        except Exception as e:  # recorded in the judgment; a judge failure never ends the run
            message = getattr(e, "message", None) or str(e) or type(e).__name__
            return CallOutcome(
                None,
                f"{type(e).__name__}: {message} ({attempts[0]} attempts)",
                attempts=attempts[0],
                seconds=time.perf_counter() - started,
            )
        if self.cache is not None:
            self.cache.put(
                key, self.name, result.text, result.prompt_tokens, result.completion_tokens
            )
        return CallOutcome(
            result.text,
            None,
            result.prompt_tokens,
            result.completion_tokens,
            attempts[0],
            cached=False,
            seconds=time.perf_counter() - started,
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judge's decision on one prompt. ``status``: ok, unparsable or error."""

    status: str
    value: float | str | None
    text: str
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    samples: int
    cached: bool
    seconds: float

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


async def judge_verdict(
    caller: JudgeCaller, messages: list[dict[str, Any]], scale: Scale, *, parse_retries: int = 2
) -> Verdict:
    """Ask the judge until its verdict parses (up to ``parse_retries`` extra samples)."""
    prompt_tokens = completion_tokens = attempts = 0
    seconds = 0.0
    cached = True
    text = ""
    for sample in range(parse_retries + 1):
        outcome = await caller.call(messages, sample)
        prompt_tokens += outcome.prompt_tokens
        completion_tokens += outcome.completion_tokens
        attempts += outcome.attempts
        seconds += outcome.seconds
        cached = cached and outcome.cached
        if outcome.text is None:
            return Verdict(
                "error", None, text, outcome.error, prompt_tokens, completion_tokens,
                attempts, sample + 1, False, seconds,
            )  # fmt: skip
        text = outcome.text
        value = parse_verdict(scale, text)
        if value is not None:
            return Verdict(
                "ok", value, text, None, prompt_tokens, completion_tokens,
                attempts, sample + 1, cached, seconds,
            )  # fmt: skip
    return Verdict(
        "unparsable", None, text, None, prompt_tokens, completion_tokens,
        attempts, parse_retries + 1, cached, seconds,
    )  # fmt: skip
