"""What ``--from`` and ``--data`` name, read into preference data or a prompt sample.

- ``store``: the configured database (``ARENA_DATABASE_URL`` or the SQLite file); any
  SQLAlchemy URL (``sqlite:///…``, ``postgresql+psycopg://…``) names another one;
- ``judge:FILE[,FILE…]``: judge verdict files, with ``questions`` for the prompts;
- ``routellm:DIR``: golden labels from a RouteLLM evaluation folder (``benchmark`` says which);
- any other value: a preference file (JSON Lines, JSON array or Parquet).
"""

from __future__ import annotations

import json
from pathlib import Path

from arena.routing.benchmarks import golden_labels, load_benchmark
from arena.routing.data import (
    PreferenceData,
    load_from_store,
    load_judge_verdicts,
    load_preference_file,
)
from arena.routing.errors import RoutingError


def load_source(
    source: str,
    *,
    questions: str | None = None,
    benchmark: str | None = None,
    baseline: str | None = None,
) -> PreferenceData:
    if source == "store" or "://" in source:
        from arena.config import Settings
        from arena.store.db import Database

        url = Settings().resolved_database_url() if source == "store" else source
        db = Database(url)
        try:
            return load_from_store(db)
        finally:
            db.dispose()
    if source.startswith("judge:"):
        if not questions:
            raise RoutingError("judge verdicts need --questions (the question JSONL)")
        files = [f for f in source.removeprefix("judge:").split(",") if f]
        return load_judge_verdicts(files, questions, baseline=baseline)
    if source.startswith("routellm:"):
        table = load_benchmark(
            source.removeprefix("routellm:"), benchmark or "mmlu", questions=questions
        )
        return golden_labels(table)
    return load_preference_file(source)


def load_prompts(location: str, *, benchmark: str | None = None) -> list[str]:
    """A prompt sample: a RouteLLM folder (with ``benchmark``), a preference file, or a JSONL
    of prompts (strings or objects with ``prompt``)."""
    path = Path(location.removeprefix("routellm:"))
    if path.is_dir():
        return list(load_benchmark(path, benchmark or "mmlu").prompts)
    if not path.is_file():
        raise RoutingError(f"{location}: no such file or folder")
    if path.suffix in (".jsonl", ".json"):
        try:
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except ValueError as e:
            raise RoutingError(f"{path}: not JSON Lines ({e})") from None
        if rows and all(isinstance(r, str) for r in rows):
            return rows
        plain = all(isinstance(r, dict) and isinstance(r.get("prompt"), str) for r in rows)
        if rows and plain and not all("model_a" in r for r in rows):
            return list(dict.fromkeys(r["prompt"] for r in rows))
    prompts = list(load_preference_file(path).prompts)
    return list(dict.fromkeys(prompts))
