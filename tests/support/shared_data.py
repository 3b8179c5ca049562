"""Where the shared real data lives: ``$ARENA_SHARED_DATA``, else ``shared/data`` beside the
checkout (as on the development machines and in CI), else inside it."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def _find() -> Path:
    if os.environ.get("ARENA_SHARED_DATA"):
        return Path(os.environ["ARENA_SHARED_DATA"])
    for candidate in (_REPO.parent / "shared" / "data", _REPO / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return _REPO.parent / "shared" / "data"


SHARED_DATA = _find()
