"""LLM-judge scores shown beside the arena rating: MT-Bench and Arena-Hard.

``arena judge show --json FILE`` writes a report (``arena.judge.report.Report.as_json``);
the leaderboard page reads every ``*.json`` report in one folder (``ARENA_JUDGE_RESULTS_DIR``,
by default ``ARENA_DATA_DIR/judge``). Models are matched by name. When several reports score
a model, the newest file wins. Arena-Hard scores are win rates against a baseline, so only
reports sharing the newest report's baseline are mixed (other baselines are not comparable).
Files are re-read only when the folder's listing (names, sizes, times) changes.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("arena.web")


@dataclass(frozen=True)
class JudgeScore:
    """One model's judge scores; ``None`` where no report scores it."""

    mt_bench: float | None = None
    arena_hard: float | None = None
    arena_hard_lower: float | None = None
    arena_hard_upper: float | None = None


@dataclass(frozen=True)
class JudgeResults:
    """Scores per model, plain and style-controlled Arena-Hard, and their baseline."""

    plain: dict[str, JudgeScore]
    style: dict[str, JudgeScore]
    baseline: str | None = None

    def for_board(self, style_control: bool) -> dict[str, JudgeScore]:
        """A style-controlled board gets style-controlled Arena-Hard scores when reports
        have them (and then only those: plain and controlled scores never share a column)."""
        if not style_control or not self.style:
            return self.plain
        out = {m: JudgeScore(s.mt_bench) for m, s in self.plain.items()}
        for model, score in self.style.items():
            mt_bench = out.get(model, JudgeScore()).mt_bench
            out[model] = JudgeScore(
                mt_bench, score.arena_hard, score.arena_hard_lower, score.arena_hard_upper
            )
        return out

    @property
    def has_style(self) -> bool:
        return bool(self.style)


NO_RESULTS = JudgeResults({}, {})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _arena_hard_rows(rows: Any) -> dict[str, tuple[float, float | None, float | None]]:
    out = {}
    for row in rows or ():
        if isinstance(row, dict) and (score := _number(row.get("score"))) is not None:
            out[str(row.get("model"))] = (
                score,
                _number(row.get("lower")),
                _number(row.get("upper")),
            )
    return out


def _read_report(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        log.warning("judge results: skipping %s (%s)", path.name, e)
        return None
    if not isinstance(data, dict) or not ({"mt_bench", "arena_hard"} & data.keys()):
        log.warning("judge results: %s is no `arena judge show --json` report", path.name)
        return None
    return data


def parse_reports(reports: list[dict[str, Any]]) -> JudgeResults:
    """Combine reports, oldest first (later ones win per model)."""
    mt_bench: dict[str, float] = {}
    for report in reports:
        for row in (report.get("mt_bench") or {}).get("models") or ():
            if isinstance(row, dict) and (score := _number(row.get("overall"))) is not None:
                mt_bench[str(row.get("model"))] = score
    hard = [r["arena_hard"] for r in reports if isinstance(r.get("arena_hard"), dict)]
    baseline = str(hard[-1].get("baseline")) if hard else None
    plain: dict[str, tuple[float, float | None, float | None]] = {}
    style: dict[str, tuple[float, float | None, float | None]] = {}
    for report in hard:
        if str(report.get("baseline")) != baseline:
            continue
        plain.update(_arena_hard_rows(report.get("rows")))
        style.update(_arena_hard_rows(report.get("style_rows")))

    combined = {
        m: JudgeScore(mt_bench.get(m), *plain.get(m, (None, None, None)))
        for m in set(plain) | set(mt_bench)
    }
    return JudgeResults(combined, {m: JudgeScore(None, *v) for m, v in style.items()}, baseline)


class JudgeResultsFolder:
    """The reports in ``directory`` (none when it is missing), cached until it changes."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._lock = threading.Lock()
        self._listing: tuple[tuple[str, int, int], ...] | None = None
        self._results = NO_RESULTS

    def _files(self) -> list[tuple[Path, int, int]]:
        if self.directory is None or not self.directory.is_dir():
            return []
        files = []
        for path in self.directory.glob("*.json"):
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.is_file():
                files.append((path, stat.st_mtime_ns, stat.st_size))
        files.sort(key=lambda f: (f[1], f[0].name))
        return files

    def results(self) -> JudgeResults:
        files = self._files()
        listing = tuple((p.name, mtime, size) for p, mtime, size in files)
        with self._lock:
            if listing != self._listing:
                reports = [r for p, _, _ in files if (r := _read_report(p)) is not None]
                self._results = parse_reports(reports) if reports else NO_RESULTS
                self._listing = listing
            return self._results
