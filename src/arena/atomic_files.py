"""Output files written whole or not at all, and the two row formats exports use.

Every export and artifact goes to a temporary file beside its target and is renamed over it
at the end, so a failed or interrupted run leaves the previous file (or none), never half of
one. ``write_jsonl`` and ``write_parquet`` write rows as they come (an iterator is never held
in memory whole); both return the number of rows.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def write_atomic(path: Path, write: Callable[[Path], T]) -> T:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        result = write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


def write_text_atomic(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="") as f:
            f.write(text)

    write_atomic(path, write)


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path, *, default: Any = None) -> int:
    """JSON Lines to ``path`` (not atomic by itself: pass it through ``write_atomic``)."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=default) + "\n")
            count += 1
    return count


def write_parquet(
    rows: Iterable[dict[str, Any]],
    path: Path,
    schema: Any,
    *,
    row_group: int,
    to_row: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> int:
    """Rows in Parquet (zstd) in groups of ``row_group``; an empty export still has the
    schema. ``to_row`` turns a row into what ``schema`` holds (e.g. nested JSON as text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    written = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        batch: list[dict[str, Any]] = []
        for row in rows:
            batch.append(to_row(row) if to_row is not None else row)
            if len(batch) == row_group:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                written += len(batch)
                batch = []
        if batch or not written:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            written += len(batch)
    return written
