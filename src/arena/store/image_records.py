"""The database record of each stored image (content hash, type, size, path under the
data dir) and its bytes, so every replica on the database can serve it; checking and
writing are ``arena.store.images``'s. The same content hash twice keeps the first record
(an older record without bytes gets them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import undefer

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
    # The bytes from the database; None for a record made before images lived there.
    data: bytes | None = None


def _image_info(row: StoredImage, *, with_data: bool = False) -> ImageInfo:
    return ImageInfo(
        row.content_hash,
        row.mime_type,
        row.width,
        row.height,
        row.byte_size,
        row.storage_path,
        row.created_at,
        row.data if with_data else None,
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
    data: bytes | None = None,
    now: datetime | None = None,
) -> ImageInfo:
    """Record an image (with its bytes); the same content hash twice keeps the first record,
    filling in the bytes when that record had none."""
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
        "data": data,
        "created_at": now or utcnow(),
    }
    statement = db.conflict_insert(StoredImage).values(**values).on_conflict_do_nothing()
    with db.session() as session:
        session.execute(statement)
        if data is not None:
            session.execute(
                update(StoredImage)
                .where(StoredImage.content_hash == content_hash, StoredImage.data.is_(None))
                .values(data=data)
            )
        row = session.get(StoredImage, content_hash, options=[undefer(StoredImage.data)])
        assert row is not None
        return _image_info(row, with_data=True)


def get_image(db: Database, content_hash: str) -> ImageInfo | None:
    """The record with its bytes (``data`` None for a record from before they were kept)."""
    with db.session(read_only=True) as session:
        row = session.get(StoredImage, content_hash, options=[undefer(StoredImage.data)])
        return None if row is None else _image_info(row, with_data=True)
