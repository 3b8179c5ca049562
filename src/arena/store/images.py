"""Images in the database (bytes and record, keyed by content hash), so every replica on
one database serves any image whichever replica received it.

Bytes are checked with Pillow (the header read for real, not a file-extension guess) before
anything is written. Images recorded before the bytes lived in the database have ``data``
NULL and are read from the data dir that stored them (``read_image_bytes``); uploading one
again fills its bytes in. ``image_path`` is where the bytes are on this replica's disk: a
cache written on first use for images from the database.

An image id is the SHA-256 of its bytes, 64 lowercase hex digits, and nothing else is ever
looked up or turned into a path (``check_image_id``); a path built from a stored record must
still lie inside the images directory (``image_path``).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from pathlib import Path

from arena.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from arena.store.db import Database
from arena.store.image_records import ImageInfo, get_image, save_image_record

IMAGE_DIR = "images"
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 24_000_000
IMAGE_ID_PATTERN = re.compile(r"[0-9a-f]{64}")


def check_image_id(image_id: object) -> str:
    """The id itself when it is a content hash; otherwise a 400 naming ``image_id``."""
    if not isinstance(image_id, str) or not IMAGE_ID_PATTERN.fullmatch(image_id):
        raise BadRequest(
            "image_id must be an id returned by POST /api/images (64 hexadecimal digits).",
            param="image_id",
            code="invalid_image_id",
        )
    return image_id


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _inspect(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data), formats=list(MIME_TYPES)) as image:
            fmt, (width, height) = image.format, image.size
            if width * height > max_pixels:
                raise PayloadTooLarge(f"image has {width}x{height} pixels; limit {max_pixels}")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UnsupportedMediaType(f"not a readable image: {e}") from e
    except Image.DecompressionBombError as e:
        raise PayloadTooLarge(str(e)) from e
    if fmt not in MIME_TYPES:
        raise UnsupportedMediaType(f"image format {fmt!r} is not accepted; use PNG/JPEG/WebP/GIF")
    return MIME_TYPES[fmt], width, height


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_image_bytes(
    db: Database,
    data_dir: Path,
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageInfo:
    """Validate, write (once per content) and record an image; returns its record."""
    if not data:
        raise BadRequest("empty image")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"image is {len(data)} bytes; limit {max_bytes}")
    digest = content_hash(data)
    existing = get_image(db, digest)
    if existing is not None and existing.data is not None:
        return existing
    mime_type, width, height = _inspect(data, max_pixels)
    relative = Path(IMAGE_DIR) / digest[:2] / f"{digest}.{EXTENSIONS[mime_type]}"
    return save_image_record(
        db,
        content_hash=digest,
        mime_type=mime_type,
        width=width,
        height=height,
        byte_size=len(data),
        storage_path=relative.as_posix(),
        data=data,
    )


def _local_path(data_dir: Path, image: ImageInfo) -> Path:
    check_image_id(image.content_hash)
    # Decided on the path's text alone (abspath does not touch the filesystem).
    root = Path(os.path.abspath(Path(data_dir) / IMAGE_DIR))
    path = Path(os.path.abspath(Path(data_dir) / image.storage_path))
    if not path.is_relative_to(root):
        raise NotFound("The image's file is not in the image store.", param="image_id")
    return path


def read_image_bytes(data_dir: Path, image: ImageInfo) -> bytes:
    """The image's bytes: from the database, else (an older record) from this data dir."""
    if image.data is not None:
        return image.data
    path = _local_path(data_dir, image)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(
            "The image was stored before images were kept in the database, by another "
            "replica; upload it again.",
            param="image_id",
        ) from None


def image_path(data_dir: Path, image: ImageInfo) -> Path:
    """A file holding the image's bytes, always inside ``data_dir/images``, or ``NotFound``.

    Bytes from the database are written there once (a per-replica cache) for callers
    that read files; ``read_image_bytes`` needs no file."""
    path = _local_path(data_dir, image)
    if image.data is not None and not path.exists():
        _write_atomically(path, image.data)
    return path
