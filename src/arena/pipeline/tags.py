"""What every tagger reads and returns: the shared contract of the pipeline.

A tagger sees one battle's user prompts (``PromptRecord``) and returns ``Tag`` values. The
runner (``pipeline/runner.py``) stores them with the tagger's name and version and re-runs a
tagger only on battles it has not tagged at its current version. Deterministic taggers are
plain functions; LLM taggers are async and call a labeller model through ``providers/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

TagStatus = Literal["ok", "unparsable", "error"]


@dataclass(frozen=True)
class PromptRecord:
    """A battle's user side: its prompts in turn order (what taggers label)."""

    battle_id: str
    prompts: tuple[str, ...]
    has_images: bool = False

    @property
    def first_prompt(self) -> str:
        return self.prompts[0] if self.prompts else ""

    @property
    def turns(self) -> int:
        return len(self.prompts)


@dataclass(frozen=True)
class Tag:
    """One tag value. ``value`` is JSON-serialisable; ``status`` is ``unparsable`` when a
    labeller answered but no verdict could be read (``detail`` keeps a short excerpt) and
    ``error`` when the call failed after retries."""

    name: str
    value: Any
    status: TagStatus = "ok"
    detail: str | None = None


@dataclass(frozen=True)
class DeterministicTagger:
    """A pure tagger: same prompts, same tags, no model."""

    name: str
    version: str
    tag_names: tuple[str, ...]
    run: Callable[[PromptRecord], Sequence[Tag]]


@dataclass(frozen=True)
class LabellerTagger:
    """A tagger that asks a labeller model; ``run(record, ask)`` where ``ask(prompt) ->
    answer text`` is the runner's cached, retried, concurrency-limited call."""

    name: str
    version: str
    tag_names: tuple[str, ...]
    run: Callable[[PromptRecord, Callable[[str], Awaitable[str]]], Awaitable[Sequence[Tag]]]
    description: str = field(default="")
