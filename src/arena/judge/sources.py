"""Reading and appending JSONL records, from local paths or http(s) URLs.

Benchmarks are data the user points at; nothing here ships anyone's questions. Output files
are append-only and flushed per record, so an interrupted run loses at most the record in
flight and a rerun can resume from what is on disk.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from arena.errors import BadRequest


def is_url(location: str | Path) -> bool:
    return str(location).startswith(("http://", "https://"))


def read_text(location: str | Path, *, timeout_s: float = 60.0) -> str:
    """The text at a path or URL; a clear ``BadRequest`` when it cannot be read."""
    if is_url(location):
        import httpx

        try:
            response = httpx.get(str(location), timeout=timeout_s, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as e:
            raise BadRequest(f"cannot fetch {location}: {e}") from None
        return response.text
    path = Path(location)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise BadRequest(f"cannot read {path}: {e.strerror or e}") from None


def parse_jsonl(text: str, source: str) -> list[dict[str, Any]]:
    """Parse JSONL text; each bad line is reported with its number."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadRequest(f"{source}:{number}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise BadRequest(f"{source}:{number}: each line must be a JSON object")
        rows.append(row)
    return rows


def read_jsonl(location: str | Path) -> list[dict[str, Any]]:
    """All records of a JSONL file at a path or URL."""
    return parse_jsonl(read_text(location), str(location))


def read_jsonl_if_exists(path: str | Path) -> list[dict[str, Any]]:
    """Records already written to an output file (none when it does not exist yet).

    A torn last line (the process died mid-write) is ignored; ``JsonlAppender`` cuts it off
    before appending, so the record is simply redone.
    """
    path = Path(path)
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue
            raise BadRequest(f"{path}:{number}: not valid JSON") from None
        rows.append(row)
    return rows


def expand_locations(locations: Iterable[str | Path]) -> Iterator[str | Path]:
    """Paths and URLs as given, with local directories replaced by their ``*.jsonl`` files."""
    for location in locations:
        if not is_url(location) and Path(location).is_dir():
            yield from sorted(Path(location).glob("*.jsonl"))
        else:
            yield location


class JsonlAppender:
    """Append records to a JSONL file, one line each, flushed as soon as it is written.

    If the file ends with a torn line from an interrupted run, that partial line is cut off
    first (it never parsed, so nothing readable is lost) and the record is redone.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size > 0:
            _cut_torn_tail(self.path)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cut_torn_tail(path: Path) -> None:
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    keep = data.rfind(b"\n") + 1
    with path.open("r+b") as f:
        f.truncate(keep)
