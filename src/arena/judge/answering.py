"""Generating benchmark answers: every chosen model answers every question, turn by turn.

Multi-turn questions are real conversations: turn k is asked with the model's own earlier
answers in context. Answers are appended to the output JSONL (MT-Bench ``model_answer``
layout) and flushed one by one; a rerun skips (model, question) pairs already on disk.
A model that fails on a question (after the provider call's retries) gets no record, is
counted in the summary, and is simply tried again on the next run.

Sampling temperature follows the MT-Bench convention by category unless overridden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from arena.judge.benchmark_files import Question, answer_record
from arena.judge.calls import RetryPolicy, chat_once, with_retries
from arena.judge.concurrency import run_bounded
from arena.judge.sources import JsonlAppender, read_jsonl_if_exists
from arena.providers.base import Provider

# MT-Bench's convention: deterministic where there is one right answer, some freedom where
# style matters. Categories not listed use DEFAULT_TEMPERATURE.
DEFAULT_CATEGORY_TEMPERATURE: Mapping[str, float] = MappingProxyType(
    {
        "writing": 0.7,
        "roleplay": 0.7,
        "extraction": 0.0,
        "math": 0.0,
        "coding": 0.0,
        "reasoning": 0.0,
        "stem": 0.1,
        "humanities": 0.1,
    }
)
DEFAULT_TEMPERATURE = 0.7


@dataclass(frozen=True, slots=True)
class TemperatureTable:
    by_category: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_CATEGORY_TEMPERATURE)
    )
    default: float = DEFAULT_TEMPERATURE

    def for_category(self, category: str) -> float:
        return self.by_category.get(category, self.default)

    def with_overrides(
        self, overrides: Mapping[str, float], default: float | None = None
    ) -> TemperatureTable:
        merged = {**self.by_category, **overrides}
        return TemperatureTable(merged, self.default if default is None else default)


@dataclass(frozen=True, slots=True)
class AnswerSummary:
    written: int
    skipped: int
    failed: int
    failures: tuple[str, ...]


def answered_keys(path: str | Path) -> set[tuple[str, str]]:
    """(model, question key) pairs already in an answer file."""
    done = set()
    for row in read_jsonl_if_exists(path):
        model = row.get("model_id", row.get("model"))
        qid = row.get("question_id", row.get("uid"))
        if model is not None and qid is not None:
            done.add((str(model), str(qid)))
    return done


async def answer_question(
    provider: Provider,
    model: str,
    question: Question,
    *,
    temperature: float,
    max_tokens: int,
    policy: RetryPolicy,
) -> tuple[list[str], list[int], list[int]]:
    """Run the question's turns as one conversation (after its system prompt, if it has
    one); returns answers and token counts."""
    messages: list[dict[str, Any]] = []
    if question.system:
        messages.append({"role": "system", "content": question.system})
    answers: list[str] = []
    completion_tokens: list[int] = []
    prompt_tokens: list[int] = []
    params = {"temperature": temperature, "max_tokens": max_tokens}
    for turn in question.turns:
        messages.append({"role": "user", "content": turn})
        result = await with_retries(
            lambda: chat_once(provider, model, messages, params, timeout_s=policy.timeout_s),
            policy,
            [0],
        )
        messages.append({"role": "assistant", "content": result.text})
        answers.append(result.text)
        completion_tokens.append(result.completion_tokens)
        prompt_tokens.append(result.prompt_tokens)
    return answers, completion_tokens, prompt_tokens


async def generate_answers(
    providers: Mapping[str, Provider],
    questions: list[Question],
    out_path: str | Path,
    *,
    concurrency: int = 8,
    temperatures: TemperatureTable | None = None,
    max_tokens: int = 1024,
    policy: RetryPolicy | None = None,
    show_progress: bool = True,
) -> AnswerSummary:
    """Answer every question with every model in ``providers``; resumable and append-only."""
    temperatures = temperatures or TemperatureTable()
    policy = policy or RetryPolicy()
    done = answered_keys(out_path)
    jobs = [(model, q) for model in providers for q in questions if (model, q.key) not in done]
    skipped = len(providers) * len(questions) - len(jobs)
    failures: list[str] = []
    written = 0

    with JsonlAppender(out_path) as out:

        async def handle(job: tuple[str, Question]) -> None:
            nonlocal written
            model, question = job
            temperature = temperatures.for_category(question.category)
            try:
                answers, completion, prompt = await answer_question(
                    providers[model],
                    model,
                    question,
                    temperature=temperature,
                    max_tokens=max_tokens,
                    policy=policy,
                )
            except Exception as e:  # counted and retried on the next run, never fatal
                message = getattr(e, "message", None) or str(e) or type(e).__name__
                failures.append(f"{model} / {question.question_id}: {message}")
                return
            out.write(
                answer_record(
                    question,
                    model,
                    answers,
                    completion_tokens=completion,
                    prompt_tokens=prompt,
                    params={"temperature": temperature, "max_tokens": max_tokens},
                )
            )
            written += 1

        await run_bounded(
            jobs,
            handle,
            concurrency=concurrency,
            total=len(jobs),
            description="answering",
            show_progress=show_progress,
        )
    return AnswerSummary(written, skipped, len(failures), tuple(failures))
