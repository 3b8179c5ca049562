"""Per-side style features of judged answers: length in tokens and markdown element counts.

These are the raw per-answer values (tokens, headers, list items, bold spans) that the
rating engine's style control normalizes and regresses out. Token counts come from the
answer file when it recorded them, otherwise from the pipeline's documented approximation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from arena.errors import BadRequest
from arena.judge.benchmark_files import ModelAnswer
from arena.judge.judgments import BattleColumns

FEATURE_NAMES = ("answer_tokens", "header_count", "list_count", "bold_count")


def answer_features(answer: ModelAnswer) -> list[float]:
    from arena.pipeline.markdown_stats import approx_token_count, markdown_counts

    text = "\n".join(answer.turns)
    tokens = sum(answer.completion_tokens) if answer.completion_tokens else approx_token_count(text)
    counts = markdown_counts(text)
    return [
        float(tokens),
        float(sum(counts["header_count"].values())),
        float(sum(counts["list_count"].values())),
        float(sum(counts["bold_count"].values())),
    ]


def battle_features(
    columns: BattleColumns, answers: Mapping[str, Mapping[str, ModelAnswer]]
) -> dict[str, object]:
    """``{"a": (n,4), "b": (n,4), "names": FEATURE_NAMES}`` for battles keyed by question id;
    every battle's two answers must be present."""
    cache: dict[tuple[str, str], list[float]] = {}
    missing: list[str] = []

    def features(model: str, qid: str) -> list[float]:
        key = (model, qid)
        if key not in cache:
            answer = answers.get(model, {}).get(qid)
            if answer is None:
                missing.append(f"{model}/{qid}")
                cache[key] = [0.0] * len(FEATURE_NAMES)
            else:
                cache[key] = answer_features(answer)
        return cache[key]

    a = np.array(
        [features(m, q) for m, q in zip(columns.model_a, columns.question_id, strict=True)]
    )
    b = np.array(
        [features(m, q) for m, q in zip(columns.model_b, columns.question_id, strict=True)]
    )
    if missing:
        shown = ", ".join(sorted(set(missing))[:5])
        raise BadRequest(
            f"style control needs every judged answer; {len(set(missing))} missing (e.g. {shown})"
        )
    return {
        "a": a.reshape(-1, len(FEATURE_NAMES)),
        "b": b.reshape(-1, len(FEATURE_NAMES)),
        "names": FEATURE_NAMES,
    }
