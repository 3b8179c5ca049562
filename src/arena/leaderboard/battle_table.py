"""Battles from any source → one flat Polars table the leaderboard works on.

Sources: the public clean-battle layout as a JSON array or JSON Lines, Parquet with the same
columns, or Arena's own database (a SQLAlchemy URL, read through ``arena.store.export``).
Nested fields (``category_tag``, ``dedup_tag``, ``conv_metadata``, conversations) are
flattened into compact typed columns; any key may be missing, in which case a documented
default applies (see ``COLUMNS``). The raw bytes (or exported rows) are hashed so results can
name the data snapshot they came from.

Files are read in bounded blocks (``battle_stream``), normalized batch by batch
(``battle_normalize``, ``battle_text_features``); when a file is refused, it is rescanned to
name its first bad line (``battle_file_errors``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arena.errors import BadRequest
from arena.leaderboard.battle_columns import VALID_WINNERS
from arena.leaderboard.battle_normalize import normalize
from arena.leaderboard.battle_text_features import prepare_row

if TYPE_CHECKING:
    import polars as pl


@dataclass(frozen=True)
class LoadedBattles:
    """A normalized battles table, where it came from and a hash of the raw input."""

    frame: pl.DataFrame
    source: str
    data_sha256: str

    @property
    def count(self) -> int:
        return self.frame.height


def is_database_url(source: str | Path) -> bool:
    text = str(source)
    return "://" in text and text.split("://", 1)[0].split("+", 1)[0] in (
        "sqlite",
        "postgresql",
        "postgres",
    )


def load_battles(source: str | Path) -> LoadedBattles:
    """Read battles from a file (``.json``, ``.jsonl``/``.ndjson``, ``.parquet``) or a
    database URL and normalize them. Raises ``BadRequest`` with a clear message on bad input."""
    if is_database_url(source):
        rows = _rows_from_database(str(source))
        digest = hashlib.sha256(
            json.dumps(rows, sort_keys=True, default=str).encode("utf-8")
        ).hexdigest()
        return LoadedBattles(normalize_rows(rows), str(source), digest)
    path = Path(source)
    if not path.is_file():
        raise BadRequest(f"battles file not found: {path}", param="battles")
    frame, digest = _read_file(path)
    return LoadedBattles(frame, str(path), digest)


def normalize_rows(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Normalize battles given as dicts (e.g. from ``arena.store.export.clean_battles``)."""
    import polars as pl

    prepared = [prepare_row(r) for r in rows]
    if not prepared:
        raise BadRequest("no battles in the input", param="battles")
    return normalize(pl.from_dicts(prepared, infer_schema_length=None))


def _rows_from_database(url: str) -> list[dict[str, Any]]:
    try:
        from arena.store.db import Database
        from arena.store.export import clean_battles
    except ImportError as e:  # the store area is a separate module
        raise BadRequest(f"reading battles from a database needs arena.store: {e}") from e
    db = Database(url)
    try:
        return list(clean_battles(db))
    finally:
        db.dispose()


def _read_file(path: Path) -> tuple[pl.DataFrame, str]:
    import polars as pl

    from arena.leaderboard.battle_stream import read_battle_file

    try:
        return read_battle_file(path)
    except BadRequest as e:
        # The column checks only count bad battles in one block; name the first one's line.
        located = _locate_bad_battle(path)
        if located is None:
            raise
        raise located from e
    except (pl.exceptions.PolarsError, OSError, ValueError) as e:
        # The fast readers report offsets within a block ("Syntax at character 0"); only now,
        # on the failure path, rescan the file to name the first bad line.
        located = _locate_bad_battle(path) if not isinstance(e, OSError) else None
        if located is not None:
            raise located from e
        raise BadRequest(f"cannot read battles from {path}: {e}", param="battles") from e


def _locate_bad_battle(path: Path) -> BadRequest | None:
    """The error naming the first bad line/item of a JSON or JSON Lines file, if one is found."""
    from arena.leaderboard.battle_file_errors import first_bad_item, first_bad_line
    from arena.leaderboard.battle_stream import PARQUET_SUFFIXES, first_non_space

    first = first_non_space(path)
    if path.suffix.lower() in PARQUET_SUFFIXES or first not in (b"[", b"{"):
        return None
    if first == b"[":
        return first_bad_item(path, VALID_WINNERS)
    return first_bad_line(path, VALID_WINNERS)
