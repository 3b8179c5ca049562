"""Leaderboard artifacts on disk: JSON + Parquet, one pair per (category, style control),
grouped in one folder per data snapshot, with a manifest written last.

Layout::

    ARTIFACTS/
      snapshot-<id>/
        manifest.json                       # written last: the set is complete when present
        00-full.raw.<id>.json / .parquet    # one pair per (category, style control)
        01-full.style.<id>.json / .parquet
        ...

``<id>`` hashes the input battles and every setting (see ``compute.settings_digest``). A set
is written to a hidden temporary folder and renamed into place, so readers never see half of
one. Nothing here is pickled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arena.errors import NotFound
from arena.leaderboard.table import Leaderboard, ModelRow

MANIFEST = "manifest.json"
SNAPSHOT_PREFIX = "snapshot-"
PARQUET_META_KEY = b"arena.leaderboard"
FORMAT_VERSION = 1


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "x"


@dataclass(frozen=True)
class ArtifactEntry:
    category: str
    style_control: bool
    json_file: str
    parquet_file: str


@dataclass(frozen=True)
class ArtifactSet:
    """One snapshot's leaderboards; ``get`` reads a leaderboard's JSON on demand."""

    directory: Path
    snapshot: str
    created: str
    entries: tuple[ArtifactEntry, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def categories(self) -> list[str]:
        seen: list[str] = []
        for e in self.entries:
            if e.category not in seen:
                seen.append(e.category)
        return seen

    def has(self, category: str, style_control: bool) -> bool:
        return self._entry(category, style_control) is not None

    def _entry(self, category: str, style_control: bool) -> ArtifactEntry | None:
        for e in self.entries:
            if e.category == category and e.style_control == style_control:
                return e
        return None

    def get(self, category: str, style_control: bool = False) -> Leaderboard:
        entry = self._entry(category, style_control)
        if entry is None:
            mode = "with" if style_control else "without"
            raise NotFound(
                f"no leaderboard for category {category!r} {mode} style control in snapshot "
                f"{self.snapshot}; available: {', '.join(self.categories)}",
                param="category",
            )
        return read_json(self.directory / entry.json_file)


def read_json(path: Path) -> Leaderboard:
    return Leaderboard.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _write_parquet(board: Leaderboard, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [m.to_dict() for m in board.models]
    columns = [
        ("model", pa.string()),
        ("rating", pa.float64()),
        ("ci_lower", pa.float64()),
        ("ci_upper", pa.float64()),
        ("rank_ub", pa.int64()),
        ("num_battles", pa.int64()),
        ("wins", pa.int64()),
        ("losses", pa.int64()),
        ("ties", pa.int64()),
        ("win_rate", pa.float64()),
        ("preliminary", pa.bool_()),
        ("part", pa.int64()),
        ("notes", pa.list_(pa.string())),
        ("elo", pa.float64()),
        ("elo_lower", pa.float64()),
        ("elo_upper", pa.float64()),
        ("votes_needed", pa.int64()),
    ]
    table = pa.table({name: pa.array([r[name] for r in rows], type=kind) for name, kind in columns})
    extra = {k: v for k, v in board.to_dict().items() if k != "models"}
    table = table.replace_schema_metadata({PARQUET_META_KEY: json.dumps(extra).encode("utf-8")})
    pq.write_table(table, path)


def read_parquet(path: Path) -> Leaderboard:
    """A leaderboard from its Parquet artifact (rows + the JSON metadata in the schema)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    extra = json.loads((table.schema.metadata or {}).get(PARQUET_META_KEY, b"{}"))
    models = tuple(ModelRow.from_dict(r) for r in table.to_pylist())
    return Leaderboard.from_dict({**extra, "models": [m.to_dict() for m in models]})


def write_artifact_set(
    directory: Path,
    boards: Iterable[Leaderboard],
    *,
    snapshot: str,
    meta: dict[str, Any] | None = None,
    keep: int | None = 10,
) -> ArtifactSet:
    """Write every leaderboard as JSON and Parquet plus a manifest, atomically per set.

    Re-running with the same snapshot replaces that set. With ``keep``, only the newest
    ``keep`` snapshot folders remain afterwards.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    boards = list(boards)
    staging = Path(tempfile.mkdtemp(prefix=f".{SNAPSHOT_PREFIX}{snapshot}-", dir=directory))
    try:
        entries = []
        for index, board in enumerate(boards):
            mode = "style" if board.style_control else "raw"
            stem = f"{index:02d}-{_slug(board.category)}.{mode}.{snapshot}"
            (staging / f"{stem}.json").write_text(
                json.dumps(board.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8"
            )
            _write_parquet(board, staging / f"{stem}.parquet")
            entries.append(
                ArtifactEntry(
                    board.category, board.style_control, f"{stem}.json", f"{stem}.parquet"
                )
            )
        created = datetime.now(UTC).isoformat(timespec="microseconds")
        manifest = {
            "format_version": FORMAT_VERSION,
            "snapshot": snapshot,
            "created": created,
            "meta": meta or {},
            "artifacts": [
                {
                    "category": e.category,
                    "style_control": e.style_control,
                    "json": e.json_file,
                    "parquet": e.parquet_file,
                }
                for e in entries
            ],
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        final = move_into_place(staging, directory / f"{SNAPSHOT_PREFIX}{snapshot}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if keep is not None:
        prune_sets(directory, keep)
    return _read_manifest(final)


def _read_manifest(folder: Path) -> ArtifactSet:
    data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    entries = tuple(
        ArtifactEntry(a["category"], bool(a["style_control"]), a["json"], a["parquet"])
        for a in data.get("artifacts", [])
    )
    return ArtifactSet(folder, data["snapshot"], data["created"], entries, data.get("meta", {}))


def list_sets(directory: Path) -> list[ArtifactSet]:
    """Complete artifact sets under ``directory``, newest first; unreadable ones skipped."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    sets = []
    for folder in directory.glob(f"{SNAPSHOT_PREFIX}*"):
        if not (folder / MANIFEST).is_file():
            continue
        try:
            sets.append(_read_manifest(folder))
        except (OSError, ValueError, KeyError):
            continue
    sets.sort(key=lambda s: (s.created, s.snapshot), reverse=True)
    return sets


def load_latest(directory: Path) -> ArtifactSet:
    """The newest complete artifact set; ``NotFound`` when there is none yet."""
    sets = list_sets(directory)
    if not sets:
        raise NotFound(f"no leaderboard artifacts in {directory}", code="no_leaderboard")
    return sets[0]


def move_into_place(staging: Path, final: Path) -> Path:
    """Rename a finished set folder to its name, replacing a set of the same snapshot, so a
    reader sees the whole old set or the whole new one."""
    if final.exists():
        retired = final.parent / f".retired-{final.name}-{os.getpid()}"
        final.rename(retired)
        staging.rename(final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(final)
    return final


def prune_sets(directory: Path, keep: int) -> None:
    """Keep only the newest ``keep`` sets (at least one)."""
    for old in list_sets(directory)[max(keep, 1) :]:
        shutil.rmtree(old.directory, ignore_errors=True)
