"""One leaderboard for every replica behind a balancer.

One replica recomputes (whichever takes the lease in the database first), publishes the
artifact set to the database as a zip archive with the newest vote id it covers, and every
replica unpacks the newest published set into its own leaderboard directory, where the page
and pair sampling read it unchanged. ``recompute_shared`` runs in the refresher's child
process; ``LeaderboardSync`` is each server's cheap periodic check.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from arena.leaderboard.artifacts import (
    MANIFEST,
    SNAPSHOT_PREFIX,
    move_into_place,
    prune_sets,
)
from arena.leaderboard.compute import RatingSettings
from arena.store.db import Database
from arena.store.leaderboard_sets import (
    acquire_lease,
    load_archive,
    publish_set,
    published_head,
    release_lease,
    renew_lease,
)

log = logging.getLogger(__name__)

# Renewed every third of it while a recomputation runs, however long that takes: a holder
# that died (or hangs without renewing) frees the lease within this time.
LEASE_TTL_S = 60.0
KEEP_SETS = 10


class LeaseRenewal:
    """Renew the recompute lease from a thread every ``ttl_s / 3`` while a recomputation
    runs; ``lost`` is set when another replica holds it by then (ours had lapsed)."""

    def __init__(self, db: Database, owner: str, ttl_s: float) -> None:
        self._db, self._owner, self._ttl_s = db, owner, ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="leaderboard-lease", daemon=True)
        self.lost = False
        self.renewals = 0

    def __enter__(self) -> LeaseRenewal:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._ttl_s / 3):
            try:
                held = renew_lease(self._db, self._owner, now=datetime.now(UTC), ttl_s=self._ttl_s)
            except Exception:  # a database hiccup: try again at the next tick
                log.warning("could not renew the leaderboard lease", exc_info=True)
                continue
            self.renewals += 1
            if not held:
                self.lost = True
                log.warning("the leaderboard lease lapsed and was taken by another replica")
                return


def pack_set(folder: Path) -> bytes:
    """The artifact set's files (a flat folder) as one zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, arcname=path.name)
    return buffer.getvalue()


def install_set(archive: bytes, artifacts_dir: Path, *, keep: int = KEEP_SETS) -> Path:
    """Unpack a published set into ``artifacts_dir`` and rename it into place, so a reader
    sees either the whole set or none of it; returns the set's folder."""
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=artifacts_dir))
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
            for name in bundle.namelist():
                if Path(name).name != name or name in {"", ".", ".."}:
                    raise ValueError(f"unexpected file name in a leaderboard archive: {name!r}")
                (staging / name).write_bytes(bundle.read(name))
        snapshot = str(json.loads((staging / MANIFEST).read_text(encoding="utf-8"))["snapshot"])
        if Path(snapshot).name != snapshot:
            raise ValueError(f"unexpected snapshot name: {snapshot!r}")
        final = move_into_place(staging, artifacts_dir / f"{SNAPSHOT_PREFIX}{snapshot}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    prune_sets(artifacts_dir, keep)
    return final


def recompute_shared(
    database_url: str,
    artifacts_dir: Path,
    *,
    owner: str,
    settings: RatingSettings | None = None,
    lease_ttl_s: float = LEASE_TTL_S,
) -> int | None:
    """Recompute and publish the board unless the newest published set already covers every
    vote or another replica is computing; returns the published set's id, else None."""
    from arena.leaderboard.build import refresh_artifacts

    db = Database(database_url)
    try:
        if not published_head(db).stale:
            return None
        if not acquire_lease(db, owner, now=datetime.now(UTC), ttl_s=lease_ttl_s):
            return None
        try:
            head = published_head(db)  # another replica may have published meanwhile
            if not head.stale:
                return None
            with (
                LeaseRenewal(db, owner, lease_ttl_s),
                tempfile.TemporaryDirectory(prefix="arena-leaderboard-") as scratch,
            ):
                computed = refresh_artifacts(db.url, Path(scratch), settings=settings, keep=1)
                archive = pack_set(computed.directory)
            # Published even if the lease lapsed meanwhile: the set is correct for the votes
            # it covers, and at worst one change is published twice.
            set_id = publish_set(
                db,
                computed.snapshot,
                head.vote_watermark,
                archive,
                pipeline_stamp=head.pipeline_stamp,
            )
        finally:
            release_lease(db, owner)
        install_set(archive, Path(artifacts_dir))  # shown here at once, not a check later
        return set_id
    finally:
        db.dispose()


class LeaderboardSync:
    """Every few seconds: install a newer published set locally, and ask for a recompute
    (``request_recompute``) while votes exist beyond the newest published set."""

    def __init__(
        self,
        db: Database,
        artifacts_dir: Path,
        request_recompute: Callable[[], None],
        *,
        interval_s: float = 2.0,
        owner: str | None = None,
    ) -> None:
        self._db = db
        self._artifacts_dir = Path(artifacts_dir)
        self._request_recompute = request_recompute
        self._interval_s = interval_s
        self._owner = owner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.installed_id: int | None = None
        self.checks = 0  # finished checks, for whoever waits on one
        self.last_error: BaseException | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="leaderboard-sync", daemon=True)
            self._thread.start()

    def check_once(self) -> None:
        head = published_head(self._db)
        if head.set_id is not None and head.set_id != self.installed_id:
            archive = load_archive(self._db, head.set_id)
            if archive is not None:
                install_set(archive, self._artifacts_dir)
                self.installed_id = head.set_id
        if head.stale:
            self._request_recompute()
        self.checks += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_once()
                self.last_error = None
            except Exception as e:  # a database hiccup must not end the checks
                log.exception("leaderboard sync failed")
                self.last_error = e
            self._stop.wait(self._interval_s)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the checks (before closing the refresher they would wake)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def release_lease(self) -> None:
        """Free this server's lease once its refresher's child has ended, so another
        replica need not wait for the lease to expire."""
        if self._owner is None:
            return
        try:
            release_lease(self._db, self._owner)
        except Exception:
            log.exception("could not release the leaderboard lease")
