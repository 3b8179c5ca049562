"""Reading a battles file in bounded pieces: JSON Lines, a JSON array or Parquet.

A file of millions of battles is mostly text the leaderboard never uses (nested tags, counts
spelled out as JSON, sometimes whole conversations). Reading it whole held every parsed
object at once; here the file is read in blocks of a few MiB, each block is parsed and
normalized to the compact columns on a worker thread (PyArrow and Polars release the GIL), and
only the compact columns are kept. JSON text is hashed as it is read, so it is read once.
Peak memory is the compact table plus a few blocks in flight (and what the allocators keep).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from arena.errors import BadRequest
from arena.leaderboard.battle_columns import SOURCE_FIELDS
from arena.leaderboard.battle_json_array import json_array_chunks
from arena.leaderboard.battle_normalize import normalize

if TYPE_CHECKING:
    import polars as pl

BLOCK_BYTES = 16 << 20  # JSON text parsed per task: small enough to bound memory
PARQUET_BATCH_ROWS = 65_536
PARQUET_SUFFIXES = (".parquet", ".pq")

T = TypeVar("T")
R = TypeVar("R")


def worker_count() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def first_non_space(path: Path) -> bytes:
    with path.open("rb") as f:
        while True:
            chunk = f.read(4096)
            if not chunk:
                return b""
            stripped = chunk.lstrip()
            if stripped:
                return stripped[:1]


def file_format(path: Path) -> str:
    """``"parquet"``, ``"json-array"`` or ``"jsonl"``. The public dump is one JSON array; JSON
    Lines has one object per line. Sniff rather than trust the extension, since both appear as
    ".json" in the wild."""
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet"
    first = first_non_space(path)
    if not first:
        raise BadRequest(f"{path} is empty", param="battles")
    if first == b"[":
        return "json-array"
    if first == b"{":
        return "jsonl"
    raise BadRequest(f"{path} is neither a JSON array, JSON Lines nor Parquet", param="battles")


def jsonl_chunks(file: BinaryIO, digest: hashlib._Hash, block_size: int) -> Iterator[bytes]:
    """Whole lines of ``file`` in chunks of about ``block_size`` bytes, hashing every byte."""
    carry = b""
    while block := file.read(block_size):
        digest.update(block)
        data = carry + block if carry else block
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # one line longer than a block: keep reading
            carry = data
            continue
        carry = data[cut:]
        yield data[:cut] if carry else data
    if carry:
        yield carry


def parse_jsonl(chunk: bytes) -> pl.DataFrame | None:
    """Battles in a chunk of JSON Lines, types inferred from the chunk; None when blank.
    PyArrow's reader is several times faster than Polars' here; a chunk whose fields change
    type between rows goes to Polars, which widens types instead of failing."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.json as pa_json

    if chunk.isspace():
        return None
    options = pa_json.ReadOptions(use_threads=False, block_size=len(chunk) + 1)
    try:
        frame = pl.from_arrow(pa_json.read_json(pa.BufferReader(chunk), read_options=options))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        frame = pl.read_ndjson(io.BytesIO(chunk), infer_schema_length=None)
    return frame.select(c for c in frame.columns if c in SOURCE_FIELDS)


def normalize_jsonl(chunk: bytes) -> pl.DataFrame | None:
    raw = parse_jsonl(chunk)
    return None if raw is None else _normalize_batch(raw)


def _normalize_batch(raw: pl.DataFrame) -> pl.DataFrame | None:
    return normalize(raw) if raw.height else None


def parquet_batches(path: Path, batch_rows: int | None = None) -> Iterator[pl.DataFrame]:
    """Batches of a Parquet file, only the columns the normalizer reads."""
    import polars as pl
    import pyarrow.parquet as pq

    batch_rows = batch_rows or PARQUET_BATCH_ROWS

    # Without pre-buffering and reader threads PyArrow holds one row group's pages, not the
    # whole file's; the normalizing workers supply the parallelism.
    with pq.ParquetFile(path, pre_buffer=False) as parquet:
        columns = [name for name in parquet.schema_arrow.names if name in SOURCE_FIELDS]
        for batch in parquet.iter_batches(
            batch_size=batch_rows, columns=columns, use_threads=False
        ):
            yield pl.from_arrow(batch)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, in order, with at most ``workers + 1`` items in
    flight so a fast producer cannot pile up blocks in memory."""
    if workers <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="battles")
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def read_battle_file(path: Path, block_size: int | None = None) -> tuple[pl.DataFrame, str]:
    """The normalized battles in ``path`` and the sha256 of its bytes. Raises ``BadRequest``
    for an empty or unknown file and for unusable battles; parse errors propagate as the
    readers raise them (the caller names the bad line)."""
    import polars as pl

    block_size = block_size or BLOCK_BYTES
    fmt = file_format(path)
    digest = hashlib.sha256()
    # A file of one block has nothing to overlap; threads would only add their start-up.
    workers = worker_count() if path.stat().st_size > block_size else 1
    with path.open("rb") as file:
        if fmt == "parquet":
            parts = ordered_map(_normalize_batch, parquet_batches(path), workers)
            frames = [f for f in parts if f is not None]
            while block := file.read(block_size):
                digest.update(block)
        else:
            chunks = (json_array_chunks if fmt == "json-array" else jsonl_chunks)(
                file, digest, block_size
            )
            frames = [f for f in ordered_map(normalize_jsonl, chunks, workers) if f is not None]
    if not frames:
        raise BadRequest("no battles in the input", param="battles")
    # Left in pieces: copying them into one chunk would double the table at its largest (freed
    # pieces stay with the allocator), and the filters and fits run as fast on pieces.
    return pl.concat(frames, rechunk=False), digest.hexdigest()
