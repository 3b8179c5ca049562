"""``arena export redteam``: every ended red-team round as a dataset, and its eval set.

One row per ended round, oldest first (rounds of sessions that opted out of releases are left
out), as JSON Lines or Parquet, written whole or not at all. Player prompts, model answers and
the judge's explanations are scrubbed of personal data (``arena.pipeline.scrub``, a round's
texts together). The challenge is the snapshot the round was played with; the planted canary
is shown, as the round is over. Fields:

``round_id``, ``challenge_id``, ``challenge_kind``, ``challenge`` (the definition),
``model``, ``player`` (nickname, else ``player-`` + 8 hex digits, as on the boards),
``player_id`` (the stored player id hashed once more, so no hash the server keeps is
published), ``system_prompt``, ``secret`` (the planted canary, or null), ``outcome`` (won or
lost), ``end_reason``, ``success_turn``, ``success_method``, ``duplicate_of``, ``turn_limit``,
``time_limit_s``, ``started_at``, ``ended_at`` (ISO 8601, UTC), ``duration_s`` and ``turns``:
``{turn, prompt, answer, finish_reason, detection, judge, started_at, first_token_at,
finished_at, seconds_to_first_token, seconds}``. In Parquet, whose columns need one type,
``challenge``, ``detection`` and ``judge`` are JSON text.

``eval_set`` also writes the successful, non-duplicate attacks as the red-team evaluation set
(``arena.redteam.eval_set``), with the same scrubbed prompts.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arena.atomic_files import write_atomic, write_jsonl, write_parquet
from arena.pipeline.scrub import SCRUBBER_VERSION, Scrubber
from arena.store.db import Database
from arena.store.redteam_rounds import RoundRecord, TurnRecord, iter_ended_rounds

FORMATS = ("jsonl", "parquet")
ROW_GROUP = 1000
LAYOUT_VERSION = "1"


@dataclass
class RedTeamExportReport:
    rows: int = 0
    eval_records: int = 0
    scrubbed: Counter[str] = field(default_factory=Counter)
    skipped_eval: Counter[str] = field(default_factory=Counter)
    scrubber_version: str = SCRUBBER_VERSION


def public_player_id(player_id: str) -> str:
    digest = hashlib.sha256(f"arena-release-redteam-player:{player_id}".encode()).hexdigest()
    return f"redteam_player_{digest[:32]}"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # the store keeps UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


@dataclass(frozen=True)
class ScrubbedRound:
    record: RoundRecord
    prompts: list[str]
    answers: list[str]
    judges: list[dict[str, Any] | None]


def scrub_round(record: RoundRecord, scrubber: Scrubber, found: Counter[str]) -> ScrubbedRound:
    """The round's prompts and answers scrubbed together (a name met once goes everywhere);
    judge explanations too, as they may quote the answer."""
    turns = record.history
    explanations = [str((t.judge or {}).get("explanation") or "") if t.judge else "" for t in turns]
    texts = [t.prompt for t in turns] + [t.answer for t in turns] + explanations
    results = scrubber.scrub_conversation(texts)
    for result in results:
        found.update(result.counts)
    n = len(turns)
    judges: list[dict[str, Any] | None] = []
    for turn, result in zip(turns, results[2 * n :], strict=True):
        judge = dict(turn.judge) if turn.judge else None
        if judge is not None:
            judge["explanation"] = result.text if judge.get("explanation") else None
            judge.pop("raw", None)  # the judge's whole reply: it quotes the answer unscrubbed
        judges.append(judge)
    return ScrubbedRound(
        record,
        [r.text for r in results[:n]],
        [r.text for r in results[n : 2 * n]],
        judges,
    )


def _turn_row(turn: TurnRecord, prompt: str, answer: str, judge: Any) -> dict[str, Any]:
    return {
        "turn": turn.turn,
        "prompt": prompt,
        "answer": answer,
        "finish_reason": turn.finish_reason,
        "detection": turn.detection,
        "judge": judge,
        "started_at": _iso(turn.started_at),
        "first_token_at": _iso(turn.first_token_at),
        "finished_at": _iso(turn.finished_at),
        "seconds_to_first_token": _seconds(turn.started_at, turn.first_token_at),
        "seconds": _seconds(turn.started_at, turn.finished_at),
    }


def round_row(scrubbed: ScrubbedRound, player: str) -> dict[str, Any]:
    r = scrubbed.record
    definition = {k: v for k, v in r.challenge.items() if k not in ("public", "canary")}
    return {
        "round_id": r.id,
        "challenge_id": r.challenge_id,
        "challenge_kind": r.challenge_kind,
        "challenge": definition,
        "model": r.model,
        "player": player,
        "player_id": public_player_id(r.player_id),
        "system_prompt": r.system_prompt,
        "secret": r.challenge.get("canary"),
        "outcome": r.status,
        "end_reason": r.end_reason,
        "success_turn": r.success_turn,
        "success_method": r.success_method,
        "duplicate_of": r.duplicate_of,
        "turn_limit": r.turn_limit,
        "time_limit_s": r.time_limit_s,
        "started_at": _iso(r.started_at),
        "ended_at": _iso(r.ended_at),
        "duration_s": _seconds(r.started_at, r.ended_at),
        "turns": [
            _turn_row(t, p, a, j)
            for t, p, a, j in zip(
                r.history, scrubbed.prompts, scrubbed.answers, scrubbed.judges, strict=True
            )
        ],
    }


def arrow_schema() -> Any:
    import pyarrow as pa

    turn = pa.struct(
        [
            ("turn", pa.int64()),
            ("prompt", pa.string()),
            ("answer", pa.string()),
            ("finish_reason", pa.string()),
            ("detection", pa.string()),
            ("judge", pa.string()),
            ("started_at", pa.string()),
            ("first_token_at", pa.string()),
            ("finished_at", pa.string()),
            ("seconds_to_first_token", pa.float64()),
            ("seconds", pa.float64()),
        ]
    )
    text = ("round_id", "challenge_id", "challenge_kind", "challenge", "model", "player")
    return pa.schema(
        [
            *((name, pa.string()) for name in text),
            ("player_id", pa.string()),
            ("system_prompt", pa.string()),
            ("secret", pa.string()),
            ("outcome", pa.string()),
            ("end_reason", pa.string()),
            ("success_turn", pa.int64()),
            ("success_method", pa.string()),
            ("duplicate_of", pa.string()),
            ("turn_limit", pa.int64()),
            ("time_limit_s", pa.float64()),
            ("started_at", pa.string()),
            ("ended_at", pa.string()),
            ("duration_s", pa.float64()),
            ("turns", pa.list_(turn)),
        ]
    )


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def parquet_row(row: dict[str, Any]) -> dict[str, Any]:
    turns = [
        {**t, "detection": _json_text(t["detection"]), "judge": _json_text(t["judge"])}
        for t in row["turns"]
    ]
    return {**row, "challenge": _json_text(row["challenge"]), "turns": turns}


def _write_parquet(rows: Iterable[dict[str, Any]], path: Path) -> int:
    return write_parquet(rows, path, arrow_schema(), row_group=ROW_GROUP, to_row=parquet_row)


def _labels_for(db: Database, records: list[RoundRecord]) -> dict[str, str]:
    from arena.redteam.boards_from_store import player_labels

    return player_labels(db, (r.player_id for r in records))


def _scrubbed_rounds(
    db: Database, scrubber: Scrubber, report: RedTeamExportReport, batch: int = 500
) -> Iterator[tuple[ScrubbedRound, str]]:
    """Ended, releasable rounds, scrubbed, each with its player's public label."""
    pending: list[RoundRecord] = []

    def flush() -> Iterator[tuple[ScrubbedRound, str]]:
        labels = _labels_for(db, pending)
        for record in pending:
            yield scrub_round(record, scrubber, report.scrubbed), labels[record.player_id]
        pending.clear()

    for record in iter_ended_rounds(db, batch=batch):
        pending.append(record)
        if len(pending) == batch:
            yield from flush()
    yield from flush()


def export_redteam(
    db: Database,
    out: Path,
    *,
    fmt: str = "jsonl",
    eval_set: Path | None = None,
    scrubber: Scrubber | None = None,
) -> RedTeamExportReport:
    """Write every ended round to ``out`` (and the eval set to ``eval_set``)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    from arena.store.redteam_eval_export import EvalSetWriter

    scrubber = scrubber or Scrubber()
    report = RedTeamExportReport()
    evals = EvalSetWriter(report.skipped_eval)

    def rows() -> Iterator[dict[str, Any]]:
        for scrubbed, player in _scrubbed_rounds(db, scrubber, report):
            report.rows += 1
            if eval_set is not None:
                evals.add(scrubbed.record, scrubbed.prompts)
            yield round_row(scrubbed, player)

    writer = write_jsonl if fmt == "jsonl" else _write_parquet
    write_atomic(Path(out), lambda tmp: writer(rows(), tmp))
    if eval_set is not None:
        write_atomic(Path(eval_set), evals.write)
        report.eval_records = len(evals.records)
    return report


def export_redteam_from_url(
    url: str, out: Path, fmt: str, eval_set: Path | None, phone_regions: list[str]
) -> None:
    """``arena export redteam``: check the inputs (exit 2 with the reason), export, report."""
    import typer

    from arena.pipeline.release import check_database, scrubber_for_regions

    scrubber = scrubber_for_regions(phone_regions)
    for path, hint in ((out, "--out"), (eval_set, "--eval-set")):
        if path is not None and Path(path).is_dir():
            raise typer.BadParameter(f"{path} is a directory; give a file name", param_hint=hint)
    if eval_set is not None and Path(eval_set).resolve() == Path(out).resolve():
        raise typer.BadParameter("give the eval set a file of its own", param_hint="--eval-set")
    check_database(url)
    db = Database(url)
    try:
        report = export_redteam(db, Path(out), fmt=fmt, eval_set=eval_set, scrubber=scrubber)
    finally:
        db.dispose()
    found = ", ".join(f"{n} {k}" for k, n in sorted(report.scrubbed.items())) or "nothing"
    typer.echo(f"wrote {report.rows} red-team rounds to {out}; scrubbed: {found}")
    if eval_set is not None:
        typer.echo(f"wrote {report.eval_records} successful attacks to {eval_set}")
        for reason, n in sorted(report.skipped_eval.items()):
            typer.echo(f"left out of the eval set: {n} ({reason})")
