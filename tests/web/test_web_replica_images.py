"""Images live in the database: an image uploaded to one replica is used by another one
(its own data dir, the same database), on SQLite and PostgreSQL. Images recorded before
the bytes were kept there: tests/store/test_store_images_in_database.py."""

from __future__ import annotations

import base64
import hashlib
import io

from PIL import Image

from support.web_fakes import ScriptedProvider


def _png(size: tuple[int, int] = (40, 30), color=(200, 40, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def _eyes() -> list[ScriptedProvider]:
    return [ScriptedProvider(n, vision=True, reply="I see it.") for n in ("eye-1", "eye-2")]


def test_an_image_uploaded_to_one_replica_is_used_by_another(arena_server, own_database_url):
    first = arena_server(_eyes(), database_url=own_database_url)
    second = arena_server(_eyes(), database_url=own_database_url)
    assert first.settings.data_dir != second.settings.data_dir
    uploader, sender = first.client(), second.client()
    # Large enough to be shrunk: what is stored and sent is the re-encoded image.
    upload = uploader.post("/api/images", files={"image": ("a.png", _png((2000, 1000)), "x")})
    assert upload.status_code == 201, upload.text
    image_id = upload.json()["image_id"]
    assert not (second.settings.data_dir / "images").exists()

    battle_id = sender.new_battle(vision=True)
    response, events = sender.send(battle_id, "what is this?", image_id=image_id)
    assert response.status_code == 200 and events[-1].event == "end"

    sent = [p.requests[-1] for p in second.providers.values() if p.requests]
    assert sent and not any(p.requests for p in first.providers.values())
    url = sent[0].messages[-1].content[1].image_url.url
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    data = base64.b64decode(url[len(prefix) :])
    assert hashlib.sha256(data).hexdigest() == image_id
    with Image.open(io.BytesIO(data)) as shown:
        assert max(shown.size) == 1568  # the default max_side: shrunk once, on upload
    uploader.close()
    sender.close()
