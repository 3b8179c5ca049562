"""A content-addressed cache of judge answers (SQLite).

The key is the SHA-256 of the judge model, the exact prompt messages, the generation
parameters and the sample number (a retry after an unparsable verdict is a new sample, so it
is not answered from the cache with the same unparsable text). Rerunning a grade, or grading
the same pair in another mode, costs nothing for calls already made. Only answers the judge
actually gave are stored; failures are not, so they are tried again next time.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cache_key(
    judge_model: str, messages: list[dict[str, Any]], params: dict[str, Any], sample: int = 0
) -> str:
    material = json.dumps(
        {"judge": judge_model, "messages": messages, "params": params, "sample": sample},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int


class JudgeCache:
    """SQLite-backed. Writes are grouped into one transaction per ``commit_every`` answers
    or ``commit_interval_s`` seconds (and on ``close``): a commit per answer was the largest
    single cost of the pipeline's own work. An answer lost in a crash is only asked again.
    """

    commit_every = 64
    commit_interval_s = 1.0

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS judge_cache ("
            " key TEXT PRIMARY KEY, judge TEXT NOT NULL, text TEXT NOT NULL,"
            " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
            " created REAL NOT NULL)"
        )
        self._pending = 0
        self._last_commit = time.monotonic()

    def get(self, key: str) -> CachedAnswer | None:
        row = self._db.execute(
            "SELECT text, prompt_tokens, completion_tokens FROM judge_cache WHERE key = ?", (key,)
        ).fetchone()
        return CachedAnswer(*row) if row else None

    def put(
        self, key: str, judge: str, text: str, prompt_tokens: int, completion_tokens: int
    ) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        self._db.execute(
            "INSERT OR REPLACE INTO judge_cache"
            " (key, judge, text, prompt_tokens, completion_tokens, created)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (key, judge, text, prompt_tokens, completion_tokens, time.time()),
        )
        self._pending += 1
        now = time.monotonic()
        if self._pending >= self.commit_every or now - self._last_commit >= self.commit_interval_s:
            self.flush()

    def flush(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._pending = 0
        self._last_commit = time.monotonic()

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM judge_cache").fetchone()[0]

    def close(self) -> None:
        self.flush()
        self._db.close()
