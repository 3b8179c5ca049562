"""The public conversation dataset: voted battles, scrubbed, in the public layout, with a
dataset card beside them.

``export_conversations(db, out, fmt=...)`` streams the battles that may be released
(``arena.store.conversation_export``: opt-outs, flagged voters and failed answers stay out),
scrubs every message (``arena.pipeline.scrub``) and writes one row per vote, as JSON Lines or
Parquet (through PyArrow, in row groups, so memory stays flat), atomically: a failed export
leaves no partial file. ``README.md`` beside the file is the dataset card (an existing
README.md that is not a card is never replaced: the export refuses instead).

Row fields: ``question_id``, ``model_a``, ``model_b``, ``winner``, ``judge``,
``conversation_a``/``conversation_b`` (lists of ``{role, content}``), ``turn``, ``anony``,
``language``, ``tstamp``, ``moderation`` (``{flagged, categories, flagged_turns}``, like the
public ``openai_moderation`` field) and ``tags`` (the pipeline's tags; a JSON object in JSON
Lines, its JSON text in Parquet, whose columns need one type).

``judge`` is the store's voter id hashed once more, so no hash the server keeps (rate-limit
keys, session rows) appears in a public file. The ``prompt_hash`` tag is left out: it is a
hash of the prompt *before* scrubbing, which would let anyone confirm a guessed email or
phone number.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arena.atomic_files import write_atomic, write_jsonl, write_parquet, write_text_atomic
from arena.pipeline.scrub import SCRUBBER_VERSION, Scrubber
from arena.store.conversation_export import ReleaseBattle, iter_release_battles
from arena.store.db import Database
from arena.store.export import WINNERS

RELEASE_LAYOUT_VERSION = "1"
FORMATS = ("jsonl", "parquet")
UNRELEASED_TAGS = frozenset({"prompt_hash"})
ROW_GROUP = 2000


class CardConflict(ValueError):
    """The folder of the export already holds a README.md that is not a dataset card."""


@dataclass
class ReleaseReport:
    """What an export wrote and left out: the dataset card is written from it."""

    path: Path
    fmt: str
    rows: int = 0
    models: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    anonymous: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    scrubbed: Counter[str] = field(default_factory=Counter)
    taggers: Counter[tuple[str, str]] = field(default_factory=Counter)
    scrubber_version: str = SCRUBBER_VERSION
    layout_version: str = RELEASE_LAYOUT_VERSION


def public_judge(judge: str) -> str:
    digest = hashlib.sha256(f"arena-release-judge:{judge}".encode()).hexdigest()
    return f"arena_user_{digest[:32]}"


def _moderation(battle: ReleaseBattle) -> dict[str, Any]:
    stored = battle.tags.get("moderation")
    value = stored.value if stored is not None and isinstance(stored.value, dict) else {}
    return {
        "flagged": bool(battle.moderation_flagged or value.get("flagged")),
        "categories": [str(c) for c in value.get("categories") or []],
        "flagged_turns": [int(t) for t in value.get("flagged_turns") or []],
    }


def _scrubbed_sides(
    battle: ReleaseBattle, scrubber: Scrubber, found: Counter[str]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Both conversations scrubbed together (a name found on one side goes on both)."""
    messages = [*battle.conversation_a, *battle.conversation_b]
    results = scrubber.scrub_conversation([content for _, content in messages])
    out = []
    for (role, _), result in zip(messages, results, strict=True):
        found.update(result.counts)
        out.append({"role": role, "content": result.text})
    split = len(battle.conversation_a)
    return out[:split], out[split:]


def release_row(battle: ReleaseBattle, scrubber: Scrubber, report: ReleaseReport) -> dict:
    """One public row (and the report's counts updated with it)."""
    language = battle.tags.get("language")
    lang = language.value if language is not None and isinstance(language.value, str) else None
    tags = {
        name: tag.value
        for name, tag in sorted(battle.tags.items())
        if name not in UNRELEASED_TAGS and name not in ("language", "moderation")
    }
    for name, tag in battle.tags.items():
        if name not in UNRELEASED_TAGS:
            report.taggers[(tag.tagger, tag.version)] += 1
    report.rows += 1
    report.models.update((battle.model_a, battle.model_b))
    report.languages[lang or "unknown"] += 1
    report.anonymous += battle.mode == "battle"
    side_a, side_b = _scrubbed_sides(battle, scrubber, report.scrubbed)
    return {
        "question_id": battle.battle_id,
        "model_a": battle.model_a,
        "model_b": battle.model_b,
        "winner": WINNERS[battle.vote],
        "judge": public_judge(battle.judge),
        "conversation_a": side_a,
        "conversation_b": side_b,
        "turn": battle.turns,
        "anony": battle.mode == "battle",
        "language": lang or "unknown",
        "tstamp": battle.voted_at.timestamp(),
        "moderation": _moderation(battle),
        "tags": tags,
    }


def arrow_schema() -> Any:
    import pyarrow as pa

    message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    moderation = pa.struct(
        [
            ("flagged", pa.bool_()),
            ("categories", pa.list_(pa.string())),
            ("flagged_turns", pa.list_(pa.int64())),
        ]
    )
    return pa.schema(
        [
            ("question_id", pa.string()),
            ("model_a", pa.string()),
            ("model_b", pa.string()),
            ("winner", pa.string()),
            ("judge", pa.string()),
            ("conversation_a", message),
            ("conversation_b", message),
            ("turn", pa.int64()),
            ("anony", pa.bool_()),
            ("language", pa.string()),
            ("tstamp", pa.float64()),
            ("moderation", moderation),
            ("tags", pa.string()),
        ]
    )


def _write_parquet(rows: Iterator[dict], path: Path) -> int:
    def to_row(row: dict) -> dict:
        return {**row, "tags": json.dumps(row["tags"], ensure_ascii=False)}

    return write_parquet(rows, path, arrow_schema(), row_group=ROW_GROUP, to_row=to_row)


def export_conversations(
    db: Database,
    out: Path,
    *,
    fmt: str = "jsonl",
    scrubber: Scrubber | None = None,
    card: bool = True,
) -> ReleaseReport:
    """Write the scrubbed conversation dataset to ``out`` and its card to README.md beside
    it. Returns what was written and left out."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    from arena.pipeline.dataset_card import CARD_NAME, dataset_card, may_write_card

    out = Path(out)
    if card and not may_write_card(out.parent):
        raise CardConflict(
            f"{out.parent / CARD_NAME} exists and is not a dataset card; write the export "
            "into a folder of its own"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    scrubber = scrubber or Scrubber()
    report = ReleaseReport(path=out, fmt=fmt)
    rows = (release_row(b, scrubber, report) for b in iter_release_battles(db, report.excluded))
    writer = write_jsonl if fmt == "jsonl" else _write_parquet
    write_atomic(out, lambda tmp: writer(rows, tmp))
    if card:
        text = dataset_card(report)
        write_text_atomic(out.parent / CARD_NAME, text)
    return report


def check_database(url: str) -> None:
    """A clear usage error (exit code 2) when ``url`` is not an Arena database at the newest
    schema."""
    import typer
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from arena.store.db import is_sqlite
    from arena.store.migrate import current_revision, head_revision

    hint = "--database-url"
    try:
        if is_sqlite(url):
            path = make_url(url).database
            if path and path != ":memory:" and not Path(path).exists():
                raise typer.BadParameter(f"no database file at {path}", param_hint=hint)
        revision = current_revision(url)
    except ArgumentError as e:
        raise typer.BadParameter(f"not a database URL: {e}", param_hint=hint) from None
    except OperationalError as e:
        raise typer.BadParameter(f"cannot open the database: {e.orig}", param_hint=hint) from None
    if revision is None:
        raise typer.BadParameter(
            "the database has no arena schema; run `arena db upgrade` first", param_hint=hint
        )
    if revision != head_revision():
        raise typer.BadParameter(
            f"the database schema is at {revision}, older than this release of arena; "
            "run `arena db upgrade` first",
            param_hint=hint,
        )


def scrubber_for_regions(phone_regions: Sequence[str]) -> Scrubber:
    """The scrubber of every export command, reading phone numbers in ``--phone-region``'s
    regions; an unknown region is ``typer.BadParameter`` (exit 2) with the reason."""
    import phonenumbers
    import typer

    regions = [r.strip().upper() for r in phone_regions if r.strip()]
    unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise typer.BadParameter(
            f"unknown region {', '.join(unknown)}: use two-letter codes such as US, GB, DE",
            param_hint="--phone-region",
        )
    return Scrubber(phone_regions=regions)


def release_from_url(url: str, out: Path, fmt: str, phone_regions: Sequence[str]) -> None:
    """``arena export conversations``: check the inputs, export, say what was written."""
    import typer

    scrubber = scrubber_for_regions(phone_regions)
    if Path(out).is_dir():
        raise typer.BadParameter(f"{out} is a directory; give a file name", param_hint="--out")
    check_database(url)
    db = Database(url)
    try:
        report = export_conversations(db, Path(out), fmt=fmt, scrubber=scrubber)
    except CardConflict as e:
        raise typer.BadParameter(str(e), param_hint="--out") from None
    finally:
        db.dispose()
    left_out = ", ".join(f"{n} {k}" for k, n in sorted(report.excluded.items())) or "none"
    found = ", ".join(f"{n} {k}" for k, n in sorted(report.scrubbed.items())) or "nothing"
    typer.echo(f"wrote {report.rows} battles to {out} (card: {Path(out).parent / 'README.md'})")
    typer.echo(f"left out: {left_out}; scrubbed: {found}")
