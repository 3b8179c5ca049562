"""The database record of each stored image (content hash, type, size, path under the
data dir); the files themselves are ``arena.store.images``'s. The same content hash twice
keeps the first record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from arena.errors import BadRequest
from arena.store.db import Database
from arena.store.models import StoredImage, check_fits, utcnow


@dataclass(frozen=True, slots=True)
class ImageInfo:
    content_hash: str
    mime_type: str
    width: int
    height: int
    byte_size: int
    storage_path: str
    created_at: datetime


def _image_info(row: StoredImage) -> ImageInfo:
    return ImageInfo(
        row.content_hash,
        row.mime_type,
        row.width,
        row.height,
        row.byte_size,
        row.storage_path,
        row.created_at,
    )


def save_image_record(
    db: Database,
    *,
    content_hash: str,
    mime_type: str,
    width: int,
    height: int,
    byte_size: int,
    storage_path: str,
    now: datetime | None = None,
) -> ImageInfo:
    """Record an image stored under the data dir; the same content hash twice is a no-op
    that returns the first record."""
    if len(content_hash) != 64 or any(c not in "0123456789abcdef" for c in content_hash):
        raise BadRequest("content_hash must be a lowercase sha256 hex digest")
    check_fits(mime_type, StoredImage.mime_type, param="mime_type")
    check_fits(storage_path, StoredImage.storage_path, param="storage_path")
    values = {
        "content_hash": content_hash,
        "mime_type": mime_type,
        "width": int(width),
        "height": int(height),
        "byte_size": int(byte_size),
        "storage_path": storage_path,
        "created_at": now or utcnow(),
    }
    statement = db.conflict_insert(StoredImage).values(**values).on_conflict_do_nothing()
    with db.session() as session:
        session.execute(statement)
        row = session.get(StoredImage, content_hash)
        assert row is not None
        return _image_info(row)


def get_image(db: Database, content_hash: str) -> ImageInfo | None:
    with db.session(read_only=True) as session:
        row = session.get(StoredImage, content_hash)
        return None if row is None else _image_info(row)
