"""Image bytes in the database: records from before (bytes only on disk) keep being read
from the data dir that stored them, and uploading such an image again moves its bytes into
the database, where any replica's data dir can read them."""

from __future__ import annotations

import hashlib
import io
import uuid

from PIL import Image

from arena.store.image_records import get_image, save_image_record
from arena.store.images import image_path, read_image_bytes, store_image_bytes


def _unique_png() -> bytes:
    """A picture no other test stores (the PostgreSQL database is shared per test run)."""
    buf = io.BytesIO()
    Image.new("RGB", (41, 29), tuple(uuid.uuid4().bytes[:3])).save(buf, "PNG")
    return buf.getvalue()


def test_records_from_before_keep_being_read_from_their_data_dir(db, tmp_path):
    data = _unique_png()
    digest = hashlib.sha256(data).hexdigest()
    relative = f"images/{digest[:2]}/{digest}.png"
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_bytes(data)
    legacy = save_image_record(
        db,
        content_hash=digest,
        mime_type="image/png",
        width=41,
        height=29,
        byte_size=len(data),
        storage_path=relative,
    )
    assert legacy.data is None
    assert read_image_bytes(tmp_path, legacy) == data
    assert image_path(tmp_path, legacy).read_bytes() == data

    # Uploading it again moves the bytes into the database: another data dir can read it.
    again = store_image_bytes(db, tmp_path, data)
    assert again.data == data and get_image(db, digest).data == data
    elsewhere = tmp_path / "other-replica"
    assert read_image_bytes(elsewhere, get_image(db, digest)) == data
    assert image_path(elsewhere, get_image(db, digest)).read_bytes() == data
