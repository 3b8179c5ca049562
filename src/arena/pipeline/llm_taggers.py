"""The LLM taggers: hard prompts, instruction following, math and creative writing.

Each asks the labeller once per battle (``ask`` from ``pipeline/labeller.py``) with its own
prompt from ``pipeline/prompts/`` and reads the verdict with ``pipeline/llm_verdicts.py``.
Tag names and values are the public battle layout's ``category_tag`` entries, which the
leaderboard reads (``leaderboard/battle_normalize.py``), so the runner's export can copy
them as they are:

- ``criteria_v0.1``: ``{"specificity", "domain_knowledge", "complexity",
  "problem_solving", "creativity", "technical_accuracy", "real_world": bool, "hard": bool}``
  with ``hard`` true when at least 6 of the 7 criteria hold (the leaderboard recounts the
  seven booleans, so both agree);
- ``if_v0.1``: ``{"if": bool, "score": int 0..5}``, ``if`` true at a score of 4 or more;
- ``math_v0.1``: ``{"math": bool}``;
- ``creative_writing_v0.1``: ``{"creative_writing": bool}``.

An answer with no readable verdict gives a tag with status ``unparsable`` (``detail``: the
reason and an excerpt); a call that failed after the labeller's retries gives ``error``.
A tagger's version carries a hash of its prompt, so editing a prompt re-labels every battle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cache
from importlib.resources import files
from typing import Any

from arena.errors import ArenaError
from arena.pipeline.labeller import LabellerCallFailed
from arena.pipeline.llm_verdicts import (
    Unparsable,
    as_bool,
    as_score,
    bare_score,
    bare_yes_no,
    excerpt,
    read_fields,
)
from arena.pipeline.tags import LabellerTagger, PromptRecord, Tag

Ask = Callable[[str], Awaitable[str]]
Reader = Callable[[str], dict[str, Any]]

MAX_PROMPT_CHARS = 8000
HARD_MIN_CRITERIA = 6
IF_MIN_SCORE = 4
IF_MAX_SCORE = 5
CRITERIA_ALIASES: dict[str, tuple[str, ...]] = {
    "specificity": ("specific",),
    "domain_knowledge": ("domain", "domain_expertise", "knowledge"),
    "complexity": ("complex",),
    "problem_solving": ("problem_solving_skills",),
    "creativity": ("creative",),
    "technical_accuracy": ("accuracy", "technical_precision", "technicality"),
    "real_world": ("real_world_application", "real_world_applicability", "practical"),
}
_IF_ALIASES = {"score": ("if_score", "rating", "instruction_following", "level", "if")}
_VERDICT_ALIASES = ("answer", "final_answer", "verdict", "label", "result")


@cache
def load_prompt(name: str) -> str:
    """A labeller prompt shipped in ``pipeline/prompts`` (``<<PROMPT>>`` marks the slot)."""
    return (files("arena.pipeline") / "prompts" / f"{name}.txt").read_text(encoding="utf-8")


def prompt_text(record: PromptRecord, limit: int = MAX_PROMPT_CHARS) -> str:
    """The battle's user turns as the labeller sees them, cut to ``limit`` characters."""
    turns = [p for p in record.prompts if p.strip()]
    if len(turns) == 1:
        text = turns[0]
    else:
        text = "\n\n".join(f"[Turn {i}]\n{p}" for i, p in enumerate(turns, 1))
    if len(text) > limit:
        text = f"{text[:limit]}\n[... {len(text) - limit} more characters not shown ...]"
    if record.has_images:
        text += "\n[The user also attached an image, not shown here.]"
    # The user's text must not close the prompt's delimiters early.
    return text.replace("</prompt>", "</ prompt>")


def render(template: str, record: PromptRecord) -> str:
    return template.replace("<<PROMPT>>", prompt_text(record))


def read_criteria(answer: str) -> dict[str, Any]:
    """``criteria_v0.1``: the seven booleans and ``hard``; every criterion must be given."""
    raw = read_fields(answer, CRITERIA_ALIASES)
    value: dict[str, Any] = {}
    missing = []
    for name in CRITERIA_ALIASES:
        flag = as_bool(raw.get(name))
        if flag is None:
            missing.append(name)
        value[name] = flag
    if missing:
        raise Unparsable(f"no yes/no for {', '.join(missing)}")
    value["hard"] = sum(value[name] for name in CRITERIA_ALIASES) >= HARD_MIN_CRITERIA
    return value


def read_instruction_following(answer: str) -> dict[str, Any]:
    """``if_v0.1``: the 0–5 score and whether it reaches ``IF_MIN_SCORE``."""
    raw = read_fields(answer, _IF_ALIASES)
    if "score" in raw:
        score = as_score(raw["score"], 0, IF_MAX_SCORE)
    else:
        score = bare_score(answer, 0, IF_MAX_SCORE)
    if score is None:
        raise Unparsable(f"no score from 0 to {IF_MAX_SCORE}")
    return {"if": score >= IF_MIN_SCORE, "score": score}


def yes_no_reader(field: str, *aliases: str) -> Reader:
    """A reader for a ``{field: bool}`` verdict, also given as an alias key or a bare word."""

    keys = {field: (*aliases, *_VERDICT_ALIASES)}

    def read(answer: str) -> dict[str, Any]:
        raw = read_fields(answer, keys)
        flag = as_bool(raw[field]) if field in raw else bare_yes_no(answer)
        if flag is None:
            raise Unparsable(f"no yes/no for {field}")
        return {field: flag}

    return read


EMPTY_VALUES: Mapping[str, dict[str, Any]] = {
    "criteria_v0.1": {**dict.fromkeys(CRITERIA_ALIASES, False), "hard": False},
    "if_v0.1": {"if": False, "score": 0},
    "math_v0.1": {"math": False},
    "creative_writing_v0.1": {"creative_writing": False},
}


def labeller_tagger(
    name: str, prompt_name: str, tag_name: str, read: Reader, description: str
) -> LabellerTagger:
    """A one-call tagger: render ``prompt_name`` with the battle, ask, read ``tag_name``."""
    template = load_prompt(prompt_name)
    version = "1-" + hashlib.sha256(template.encode("utf-8")).hexdigest()[:8]

    async def run(record: PromptRecord, ask: Ask) -> Sequence[Tag]:
        if not any(p.strip() for p in record.prompts):
            # Nothing to label (an image-only turn): no call, and no category.
            return [Tag(tag_name, dict(EMPTY_VALUES[tag_name]), detail="empty prompt")]
        try:
            answer = await ask(render(template, record))
        except (LabellerCallFailed, ArenaError, TimeoutError, OSError) as e:
            reason = str(e) if isinstance(e, LabellerCallFailed) else f"{type(e).__name__}: {e}"
            return [Tag(tag_name, None, "error", excerpt(reason, 300))]
        try:
            value = read(answer)
        except Unparsable as e:
            return [Tag(tag_name, None, "unparsable", f"{e}; answer: {excerpt(answer)}")]
        return [Tag(tag_name, value)]

    return LabellerTagger(name, version, (tag_name,), run, description)


HARD_PROMPT_TAGGER = labeller_tagger(
    "hard_prompt",
    "hard_prompt",
    "criteria_v0.1",
    read_criteria,
    "Seven criteria of a demanding prompt; hard when at least 6 hold.",
)
INSTRUCTION_FOLLOWING_TAGGER = labeller_tagger(
    "instruction_following",
    "instruction_following",
    "if_v0.1",
    read_instruction_following,
    "How much of the task is obeying explicit constraints (0-5); counts at 4+.",
)
MATH_TAGGER = labeller_tagger(
    "math",
    "math",
    "math_v0.1",
    yes_no_reader("math", "is_math", "math_problem"),
    "Whether answering needs mathematical reasoning or calculation.",
)
CREATIVE_WRITING_TAGGER = labeller_tagger(
    "creative_writing",
    "creative_writing",
    "creative_writing_v0.1",
    yes_no_reader("creative_writing", "is_creative_writing", "creative"),
    "Whether the prompt asks for an original, imaginative piece of writing.",
)

LLM_TAGGERS: tuple[LabellerTagger, ...] = (
    HARD_PROMPT_TAGGER,
    INSTRUCTION_FOLLOWING_TAGGER,
    MATH_TAGGER,
    CREATIVE_WRITING_TAGGER,
)
