"""The public benchmark layouts: questions, reference answers, model answers, judge prompts.

Understood layouts (one loader each, normalized to the small frozen records below):

- questions: MT-Bench (``question_id, category, turns: [str], reference?``, and optionally
  ``system``, a system prompt sent before the turns, and ``redteam``, what decides a replayed
  red-team attack: see ``arena.redteam.eval_set``), Arena-Hard v0.1
  (``question_id, category, cluster, turns: [{content}]``), Arena-Hard's newer layout
  (``uid, category, cluster, prompt``) and Vicuna-style (``question_id, text, category``).
- model answers: MT-Bench / Arena-Hard v0.1 (``question_id, answer_id, model_id,
  choices: [{index, turns: [str | {content}]}]``), Arena-Hard's newer layout (``uid, ans_id,
  model, messages: [{role, content: str | {answer}}]``) and Vicuna-style (``text``).
- judge prompts: MT-Bench's ``judge_prompts.jsonl`` (``name, type, system_prompt,
  prompt_template, output_format, category``).

A user's own benchmark in any of these layouts works the same way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from arena.errors import BadRequest
from arena.judge.sources import expand_locations, read_jsonl


@dataclass(frozen=True, slots=True)
class Question:
    question_id: Any
    category: str
    turns: tuple[str, ...]
    reference: tuple[str, ...] | None = None
    cluster: str | None = None
    system: str | None = None
    redteam: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return str(self.question_id)


@dataclass(frozen=True, slots=True)
class ModelAnswer:
    question_id: Any
    model: str
    turns: tuple[str, ...]
    answer_id: str = ""
    tstamp: float = 0.0
    completion_tokens: tuple[int, ...] | None = None

    @property
    def key(self) -> str:
        return str(self.question_id)


@dataclass(frozen=True, slots=True)
class JudgePrompt:
    name: str
    type: str  # "single" or "pairwise"
    system_prompt: str
    prompt_template: str
    output_format: str = ""
    category: str = "general"
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        for key in ("answer", "content", "text"):
            if isinstance(content.get(key), str):
                return content[key]
    if isinstance(content, list):
        return "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    raise ValueError(f"unsupported content {type(content).__name__}")


def question_from_record(row: dict[str, Any], source: str = "<questions>") -> Question:
    """One question in any supported layout."""
    qid = row.get("question_id", row.get("uid"))
    if qid is None:
        raise BadRequest(f"{source}: a question has neither question_id nor uid: {str(row)[:200]}")
    try:
        if "turns" in row:
            turns = tuple(_content_text(t) for t in row["turns"])
        elif "prompt" in row:
            turns = (_content_text(row["prompt"]),)
        elif "text" in row:
            turns = (_content_text(row["text"]),)
        else:
            raise ValueError("no turns, prompt or text")
    except (ValueError, TypeError) as e:
        raise BadRequest(f"{source}: question {qid}: {e}") from None
    if not turns:
        raise BadRequest(f"{source}: question {qid} has no turns")
    reference = row.get("reference")
    system, redteam = row.get("system"), row.get("redteam")
    if system is not None and not isinstance(system, str):
        raise BadRequest(f"{source}: question {qid}: system must be a string or null")
    if redteam is not None and not isinstance(redteam, dict):
        raise BadRequest(f"{source}: question {qid}: redteam must be an object or null")
    return Question(
        question_id=qid,
        category=str(row.get("category") or "general"),
        turns=turns,
        reference=tuple(_content_text(r) for r in reference) if reference else None,
        cluster=row.get("cluster"),
        system=system or None,
        redteam=redteam,
    )


def load_questions(location: str | Path) -> list[Question]:
    """Questions from a JSONL path or URL; duplicate ids are an error (answers key on them)."""
    rows = read_jsonl(location)
    questions = [question_from_record(r, str(location)) for r in rows]
    seen: set[str] = set()
    for q in questions:
        if q.key in seen:
            raise BadRequest(f"{location}: question id {q.question_id!r} appears more than once")
        seen.add(q.key)
    if not questions:
        raise BadRequest(f"{location} holds no questions")
    return questions


def answer_from_record(
    row: dict[str, Any], source: str = "<answers>", default_model: str | None = None
) -> ModelAnswer:
    """One model answer in any supported layout."""
    qid = row.get("question_id", row.get("uid"))
    model = row.get("model_id", row.get("model", default_model))
    if qid is None or model is None:
        raise BadRequest(f"{source}: an answer lacks question_id/uid or model: {str(row)[:200]}")
    tokens: list[int] | None = None
    try:
        if "choices" in row:
            raw_turns = row["choices"][0]["turns"]
            turns = tuple(_content_text(t) for t in raw_turns)
            lens = [t.get("token_len") for t in raw_turns if isinstance(t, dict)]
            if lens and all(isinstance(n, int) for n in lens) and len(lens) == len(turns):
                tokens = lens
        elif "messages" in row:
            turns = tuple(
                _content_text(m["content"]) for m in row["messages"] if m.get("role") == "assistant"
            )
        elif "text" in row:
            turns = (_content_text(row["text"]),)
        else:
            raise ValueError("no choices, messages or text")
    except (ValueError, TypeError, KeyError, IndexError) as e:
        raise BadRequest(f"{source}: answer of {model} to {qid}: {e}") from None
    if row.get("completion_tokens") and isinstance(row["completion_tokens"], list):
        tokens = [int(n) for n in row["completion_tokens"]]
    return ModelAnswer(
        question_id=qid,
        model=str(model),
        turns=turns,
        answer_id=str(row.get("answer_id", row.get("ans_id", ""))),
        tstamp=float(row.get("tstamp") or 0.0),
        completion_tokens=tuple(tokens) if tokens else None,
    )


def load_answers(locations: Iterable[str | Path]) -> dict[str, dict[str, ModelAnswer]]:
    """Answers by model, then question key, from files, directories of files, or URLs.

    When a question was answered twice, the later record wins (resumed runs append).
    """
    by_model: dict[str, dict[str, ModelAnswer]] = {}
    for location in expand_locations(locations):
        stem = Path(str(location)).stem
        for row in read_jsonl(location):
            answer = answer_from_record(row, str(location), default_model=stem)
            by_model.setdefault(answer.model, {})[answer.key] = answer
    return by_model


def load_references(location: str | Path) -> dict[str, tuple[str, ...]]:
    """Reference answers (a model-answer file, e.g. MT-Bench's GPT-4 references) by question."""
    refs: dict[str, tuple[str, ...]] = {}
    for row in read_jsonl(location):
        answer = answer_from_record(row, str(location), default_model="reference")
        refs[answer.key] = answer.turns
    return refs


def attach_references(
    questions: list[Question], references: dict[str, tuple[str, ...]]
) -> list[Question]:
    """Questions with reference answers filled in from a separate reference file."""
    out = []
    for q in questions:
        ref = references.get(q.key, q.reference)
        out.append(replace(q, reference=ref) if ref != q.reference else q)
    return out


_PROMPT_FIELDS = ("name", "type", "system_prompt", "prompt_template")


def load_judge_prompts(location: str | Path) -> list[JudgePrompt]:
    """Judge prompts from a JSONL path or URL (MT-Bench's layout)."""
    prompts = []
    for number, row in enumerate(read_jsonl(location), start=1):
        missing = [f for f in _PROMPT_FIELDS if not isinstance(row.get(f), str)]
        if missing:
            raise BadRequest(f"{location}:{number}: judge prompt lacks {', '.join(missing)}")
        if row["type"] not in ("single", "pairwise"):
            raise BadRequest(
                f"{location}:{number}: judge prompt type must be 'single' or 'pairwise', "
                f"got {row['type']!r}"
            )
        known = {*_PROMPT_FIELDS, "output_format", "category", "description"}
        prompts.append(
            JudgePrompt(
                name=row["name"],
                type=row["type"],
                system_prompt=row["system_prompt"],
                prompt_template=row["prompt_template"],
                output_format=str(row.get("output_format") or ""),
                category=str(row.get("category") or "general"),
                description=str(row.get("description") or ""),
                extra={k: v for k, v in row.items() if k not in known},
            )
        )
    if not prompts:
        raise BadRequest(f"{location} holds no judge prompts")
    return prompts


def answer_record(
    question: Question,
    model: str,
    turns: list[str],
    *,
    completion_tokens: list[int] | None = None,
    prompt_tokens: list[int] | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A model answer in the public MT-Bench ``model_answer`` layout (plus token counts)."""
    row: dict[str, Any] = {
        "question_id": question.question_id,
        "answer_id": uuid.uuid4().hex,
        "model_id": model,
        "choices": [{"index": 0, "turns": list(turns)}],
        "tstamp": time.time(),
    }
    if completion_tokens is not None:
        row["completion_tokens"] = completion_tokens
    if prompt_tokens is not None:
        row["prompt_tokens"] = prompt_tokens
    if params:
        row["params"] = params
    return row
