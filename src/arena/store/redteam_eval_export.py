"""The red-team evaluation set written beside ``arena export redteam`` (``--eval-set``).

Each successful attack that is not a duplicate becomes one question JSONL record
(``arena.redteam.eval_set.eval_record``, the layout ``arena judge answer`` and
``arena judge grade --mode redteam`` replay), built from the challenge snapshot the round
kept and the player's prompts as the export scrubbed them. A round whose snapshot no longer
validates, or that the record cannot describe, is counted as skipped with the reason.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from arena.atomic_files import write_jsonl
from arena.redteam.challenges import Challenge
from arena.redteam.eval_set import eval_record
from arena.store.redteam_rounds import RoundRecord

_CHALLENGE: TypeAdapter[Any] = TypeAdapter(Challenge)


def round_challenge(record: RoundRecord) -> Any:
    """The challenge object the round was played with, from its stored snapshot."""
    definition = {k: v for k, v in record.challenge.items() if k not in ("public", "canary")}
    return _CHALLENGE.validate_python(definition)


def is_eval_attack(record: RoundRecord) -> bool:
    return record.status == "won" and record.duplicate_of is None and record.ended_at is not None


class EvalSetWriter:
    """Collects the eval records of an export, then writes them as JSON Lines."""

    def __init__(self, skipped: Counter[str]) -> None:
        self.records: list[dict[str, Any]] = []
        self.skipped = skipped

    def add(self, record: RoundRecord, prompts: list[str]) -> None:
        if not is_eval_attack(record):
            return
        try:
            challenge = round_challenge(record)
        except ValidationError:
            self.skipped["challenge snapshot no longer valid"] += 1
            return
        # A win ends the round on the turn that won: later turns cannot exist, but a replay
        # only needs the prompts up to it.
        upto = record.success_turn or len(prompts)
        try:
            self.records.append(
                eval_record(
                    round_id=record.id,
                    challenge=challenge,
                    prompts=prompts[:upto],
                    system_prompt=record.system_prompt,
                    secret_core=record.secret_core,
                    model=record.model,
                    ended_at=record.ended_at,  # type: ignore[arg-type]
                )
            )
        except ValueError as e:
            self.skipped[str(e)] += 1

    def write(self, path: Path) -> None:
        write_jsonl(self.records, path)
