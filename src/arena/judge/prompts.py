"""Choosing the judge prompt for each judgment and filling it in.

Prompts come from a judge-prompt file in MT-Bench's layout: the user's (``--judge-prompts``,
e.g. MT-Bench's ``judge_prompts.jsonl``) or, when none is given, the one that ships with
Arena (``data/judge_prompts.jsonl``: our own wording, one prompt per slot below). Which one
serves which judgment is read off the prompt itself rather than off its name: its ``type``
(single or pairwise), whether its template asks for a second turn (``{question_2}``),
whether it needs a reference answer (``{ref_answer_1}``) and the verdict scale its
``output_format`` asks for. ``--prompt NAME`` narrows the choice when a file holds several
candidates for the same slot.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from arena.errors import BadRequest
from arena.judge.benchmark_files import JudgePrompt, load_judge_prompts
from arena.judge.verdicts import Scale

SHIPPED_PROMPTS_NAME = "Arena's own judge prompts"


def shipped_prompts_path() -> Path:
    """The judge-prompt file that ships inside the package (a real file: the package is
    installed unzipped, as its web templates need)."""
    return Path(str(resources.files("arena.judge").joinpath("data", "judge_prompts.jsonl")))


def load_prompt_file(location: str | Path | None) -> tuple[list[JudgePrompt], str]:
    """The prompts of ``location``, or the shipped ones when it is None; with a name for
    messages."""
    if location is None:
        return load_judge_prompts(shipped_prompts_path()), SHIPPED_PROMPTS_NAME
    return load_judge_prompts(location), f"the judge-prompt file {location}"


def prompt_scale(prompt: JudgePrompt) -> Scale:
    """The verdict scale a prompt asks its judge for."""
    fmt = prompt.output_format.lower()
    text = f"{prompt.output_format}\n{prompt.system_prompt}\n{prompt.prompt_template}"
    if "rating" in fmt or prompt.type == "single":
        return Scale.RATING
    if ">>" in fmt or "[[A>>B]]" in text:
        return Scale.GRADED_PAIR
    return Scale.PAIR


def template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def is_multi_turn(prompt: JudgePrompt) -> bool:
    return "question_2" in template_fields(prompt.prompt_template)


def needs_reference(prompt: JudgePrompt) -> bool:
    return bool(template_fields(prompt.prompt_template) & {"ref_answer_1", "ref_answer_2"})


@dataclass(frozen=True, slots=True)
class PromptSlot:
    scale: Scale
    multi_turn: bool
    reference: bool

    def describe(self) -> str:
        turn = "multi-turn" if self.multi_turn else "single-turn"
        ref = "reference-guided" if self.reference else "no reference"
        return f"{self.scale.value} verdict, {turn}, {ref}"


class PromptBook:
    """The judge prompts a run may use, one per slot."""

    def __init__(
        self,
        prompts: Iterable[JudgePrompt],
        names: Iterable[str] = (),
        *,
        source: str = "the judge-prompt file",
    ) -> None:
        self.source = source
        prompts = list(prompts)
        wanted = list(names)
        if wanted:
            known = {p.name for p in prompts}
            unknown = [n for n in wanted if n not in known]
            if unknown:
                raise BadRequest(
                    f"unknown judge prompt name(s) {', '.join(unknown)}; "
                    f"{self.source} has {', '.join(sorted(known))}: pass one of those to --prompt"
                )
            prompts = [p for p in prompts if p.name in wanted]
        self._by_slot: dict[PromptSlot, list[JudgePrompt]] = {}
        self._chosen: dict[PromptSlot, JudgePrompt] = {}
        for p in prompts:
            slot = PromptSlot(prompt_scale(p), is_multi_turn(p), needs_reference(p))
            self._by_slot.setdefault(slot, []).append(p)

    def find(self, slot: PromptSlot) -> JudgePrompt | None:
        candidates = self._by_slot.get(slot, [])
        if len(candidates) > 1:
            names = ", ".join(p.name for p in candidates)
            raise BadRequest(
                f"several judge prompts of {self.source} fit ({slot.describe()}): {names}; "
                "choose one with --prompt NAME"
            )
        return candidates[0] if candidates else None

    def get(self, slot: PromptSlot) -> JudgePrompt:
        if slot in self._chosen:
            return self._chosen[slot]
        prompt = self.find(slot)
        if prompt is None:
            hint = (
                "add a prompt of that shape to it, or leave out --judge-prompts to use "
                "Arena's own prompts, which cover every shape"
                if self.source != SHIPPED_PROMPTS_NAME
                else "leave out --prompt, or name a prompt of that shape"
            )
            raise BadRequest(f"{self.source} has no prompt for: {slot.describe()}; {hint}")
        self._chosen[slot] = prompt
        return prompt

    def choose(self, scale: Scale, *, multi_turn: bool, reference: bool) -> JudgePrompt:
        """The prompt for this judgment, or ``BadRequest`` naming the missing slot."""
        return self.get(PromptSlot(scale, multi_turn, reference))


def render(prompt: JudgePrompt, fields: Mapping[str, Any]) -> list[dict[str, str]]:
    """The chat messages for one judge call: the prompt's system text and filled template."""
    missing = template_fields(prompt.prompt_template) - set(fields)
    if missing:
        raise BadRequest(
            f"judge prompt {prompt.name!r} needs {', '.join(sorted(missing))}, "
            "which this judgment cannot provide"
        )
    user = prompt.prompt_template.format_map(dict(fields))
    messages = []
    if prompt.system_prompt:
        messages.append({"role": "system", "content": prompt.system_prompt})
    messages.append({"role": "user", "content": user})
    return messages


def single_fields(
    turns_q: tuple[str, ...], turns_a: tuple[str, ...], reference: tuple[str, ...] | None
) -> dict[str, str]:
    """Template fields for grading one model's answer (both turn spellings)."""
    fields = {"question": turns_q[0], "answer": turns_a[0] if turns_a else ""}
    for i, (q, a) in enumerate(zip(turns_q, turns_a, strict=False), start=1):
        fields[f"question_{i}"] = q
        fields[f"answer_{i}"] = a
    if reference:
        fields["ref_answer_1"] = reference[0]
        for i, r in enumerate(reference, start=1):
            fields[f"ref_answer_{i}"] = r
    return fields


def pair_fields(
    turns_q: tuple[str, ...],
    turns_a: tuple[str, ...],
    turns_b: tuple[str, ...],
    reference: tuple[str, ...] | None,
) -> dict[str, str]:
    """Template fields for comparing two answers.

    MT-Bench spells them ``answer_a``/``answer_b`` (``answer_a_1``… per turn); Arena-Hard's
    prompt spells A and B ``answer_1``/``answer_2``, so both spellings are filled.
    """
    fields = {
        "question": turns_q[0],
        "answer_a": turns_a[0],
        "answer_b": turns_b[0],
        "answer_1": turns_a[0],
        "answer_2": turns_b[0],
    }
    for i, q in enumerate(turns_q, start=1):
        fields[f"question_{i}"] = q
        if i <= len(turns_a):
            fields[f"answer_a_{i}"] = turns_a[i - 1]
        if i <= len(turns_b):
            fields[f"answer_b_{i}"] = turns_b[i - 1]
    if reference:
        for i, r in enumerate(reference, start=1):
            fields[f"ref_answer_{i}"] = r
    return fields
