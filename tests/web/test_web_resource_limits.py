"""Resource exhaustion through the arena API, attacked as written, on a real server.

A small PNG that decodes to 6000x6000 pixels uploaded many times at once, uploads without
end, an ``image_id`` that is a path, and JSON nested 30,000 levels deep: each is refused
with a 4xx, before the work it asks for is done.
"""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from arena.errors import BadRequest, NotFound, PayloadTooLarge
from arena.store import images as store_images
from arena.store.image_records import ImageInfo
from arena.web.images import ImageLimits, prepare_image
from support.web_fakes import ScriptedProvider

GENEROUS_UPLOADS = {"uploads_per_session": "1000/minute", "uploads_per_ip": "1000/minute"}


def _png(size: tuple[int, int], color=(250, 250, 250)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def decodes(monkeypatch) -> list[tuple[str, tuple[int, int]]]:
    """(format, size) of every image Pillow decodes in this process, the server's included
    (uvicorn runs in a thread here): ImageFile.load is where pixel memory is taken."""
    seen: list[tuple[str, tuple[int, int]]] = []
    lock = threading.Lock()
    original = ImageFile.ImageFile.load

    def load(self):  # type: ignore[no-untyped-def]
        with lock:
            seen.append((self.format, self.size))
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return seen


def test_small_png_that_decodes_to_6000x6000_is_refused_before_decoding(arena_server, decodes):
    arena = arena_server([ScriptedProvider("seer", vision=True)], settings=GENEROUS_UPLOADS)
    bomb = _png((6000, 6000))
    assert len(bomb) < 150_000  # about 100 KB on the wire, 108 MB once decoded
    client = arena.client()
    headers = {"X-CSRF-Token": client.csrf}

    def upload(_: int):  # type: ignore[no-untyped-def]
        files = {"image": ("bomb.png", bomb, "image/png")}
        return client.http.post("/api/images", files=files, headers=headers)

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(upload, range(12)))
    for response in responses:
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == "image_too_many_pixels" and error["param"] == "image"
        assert "6000x6000" in error["message"] and "24,000,000" in error["message"]
    # Not one pixel of it was decoded: Pillow never took the memory.
    assert not [size for _, size in decodes if size[0] * size[1] > 24_000_000]

    # The same server decodes (and so records) an image within the limit.
    ok = client.post("/api/images", files={"image": ("ok.png", _png((640, 480)), "image/png")})
    assert ok.status_code == 201, ok.text
    assert ("PNG", (640, 480)) in decodes
    client.close()


def test_image_limits_come_from_settings(arena_server):
    arena = arena_server(
        [ScriptedProvider("seer", vision=True)], settings={"image_max_pixels": 10_000}
    )
    client = arena.client()
    refused = client.post("/api/images", files={"image": ("a.png", _png((200, 200)), "image/png")})
    assert refused.status_code == 413 and "10,000 pixels" in refused.json()["error"]["message"]
    fine = client.post("/api/images", files={"image": ("b.png", _png((100, 100)), "image/png")})
    assert fine.status_code == 201
    client.close()


def test_uploads_are_rate_limited_per_session_and_per_address(arena_server):
    arena = arena_server(
        [ScriptedProvider("seer", vision=True), ScriptedProvider("eye", vision=True)],
        settings={"uploads_per_session": "3/minute", "uploads_per_ip": "5/minute"},
    )
    first, second = arena.client(), arena.client()

    def upload(client, shade: int):  # type: ignore[no-untyped-def]
        data = _png((32, 32), (shade, 0, 0))
        return client.post("/api/images", files={"image": ("x.png", data, "image/png")})

    assert [upload(first, i).status_code for i in range(3)] == [201, 201, 201]
    limited = upload(first, 3)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "image uploads from this session" in limited.json()["error"]["message"]
    # Another session from the same address: two more fit the address's five.
    assert [upload(second, 10 + i).status_code for i in range(2)] == [201, 201]
    by_address = upload(second, 20)
    assert by_address.status_code == 429
    assert "your network address" in by_address.json()["error"]["message"]
    # A file attached to a message is an upload too.
    battle_id = second.new_battle(vision=True)
    attached = second.post(
        f"/api/battles/{battle_id}/messages",
        data={"text": "what is this?"},
        files={"image": ("x.png", _png((8, 8)), "image/png")},
    )
    assert attached.status_code == 429
    first.close()
    second.close()


def test_multipart_image_id_that_is_a_path_is_refused(arena_server):
    seer = ScriptedProvider("seer", vision=True)
    arena = arena_server([seer, ScriptedProvider("eye", vision=True)])
    client = arena.client()
    battle_id = client.new_battle(vision=True)
    for image_id in ("../../etc/passwd", "/etc/passwd", "A" * 64, "a" * 63 + "/"):
        fields = {"text": (None, "describe it"), "image_id": (None, image_id)}
        response = client.post(f"/api/battles/{battle_id}/messages", files=fields)
        assert response.request.headers["content-type"].startswith("multipart/form-data")
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["param"] == "image_id"
    # An id of the right shape that was never uploaded is unknown, not an error.
    fields = {"text": (None, "hi"), "image_id": (None, "a" * 64)}
    unknown = client.post(f"/api/battles/{battle_id}/messages", files=fields)
    assert unknown.status_code == 404
    assert seer.requests == []  # no model was asked anything
    client.close()


def test_image_ids_and_stored_paths_stay_inside_the_image_store(tmp_path: Path):
    assert store_images.check_image_id("ab" * 32) == "ab" * 32
    for bad in ("../../etc/passwd", "AB" * 32, "ab" * 32 + "\n", None, 7):
        with pytest.raises(BadRequest):
            store_images.check_image_id(bad)
    record = ImageInfo(
        content_hash="ab" * 32,
        mime_type="image/png",
        width=1,
        height=1,
        byte_size=1,
        storage_path="images/../../../etc/passwd",
        created_at=datetime.now(UTC),
    )
    with pytest.raises(NotFound):
        store_images.image_path(tmp_path, record)


def test_json_nested_30000_levels_is_a_client_error(arena_server):
    arena = arena_server([ScriptedProvider("left"), ScriptedProvider("right")])
    client = arena.client()
    battle_id = client.new_battle()
    json_headers = {"Content-Type": "application/json"}
    deep = b'{"text": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    response = client.post(f"/api/battles/{battle_id}/messages", content=deep, headers=json_headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "malformed_json"
    # Under orjson's own limit, but deeper than any message: refused the same way.
    nested = b'{"text": "hi", "x": ' + b"[" * 200 + b"]" * 200 + b"}"
    response = client.post(
        f"/api/battles/{battle_id}/messages", content=nested, headers=json_headers
    )
    assert response.status_code == 400 and "levels deep" in response.json()["error"]["message"]
    # The other JSON routes.
    for path in ("/api/battles", f"/api/battles/{battle_id}/vote"):
        body = b'{"mode": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
        response = client.post(path, content=body, headers=json_headers)
        assert 400 <= response.status_code < 500, (path, response.text)
    # The battle is untouched and still usable.
    reply, events = client.send(battle_id, "hello")
    assert reply.status_code == 200 and events[-1].event == "end"
    client.close()


def test_large_jpeg_decodes_at_reduced_scale_and_animation_keeps_one_frame(decodes):
    limits = ImageLimits(max_pixels=24_000_000, max_side=1568)
    buf = io.BytesIO()
    Image.new("RGB", (7000, 5000), (20, 90, 200)).save(buf, "JPEG", quality=80)
    prepared = prepare_image(buf.getvalue(), limits)  # 35 MP: over the limit at full scale
    assert prepared.resized and max(prepared.width, prepared.height) == 1568
    jpeg_decodes = [size for fmt, size in decodes if fmt == "JPEG"]
    assert jpeg_decodes and all(w * h <= 24_000_000 for w, h in jpeg_decodes)

    frames = [Image.new("RGB", (64, 64), (i * 20, 0, 0)) for i in range(5)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50)
    prepared = prepare_image(gif.getvalue(), limits)
    kept = Image.open(io.BytesIO(prepared.data))
    assert prepared.mime_type == "image/gif" and not getattr(kept, "is_animated", False)

    with pytest.raises(PayloadTooLarge, match="6000x6000"):
        prepare_image(_png((6000, 6000)), limits)


def test_a_progressive_jpeg_over_the_pixel_limit_is_refused_before_decoding(decodes):
    """Reduced-scale decoding saves memory only for baseline JPEGs: a progressive one holds
    every full-size coefficient until its last scan (a 4 MB file took 1.4 GB), so its
    header size must pass the plain pixel limit."""
    limits = ImageLimits(max_pixels=4_000_000, max_side=512)
    baseline, progressive = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (4000, 3000), (20, 90, 200)).save(baseline, "JPEG", quality=80)
    Image.new("RGB", (4000, 3000), (20, 90, 200)).save(
        progressive, "JPEG", quality=80, progressive=True
    )
    with pytest.raises(PayloadTooLarge, match="4000x3000"):
        prepare_image(progressive.getvalue(), limits)
    assert not decodes  # refused from the header alone
    assert prepare_image(baseline.getvalue(), limits).resized  # 12 MP, decoded at 1/2 or less
    assert decodes and all(w * h <= 4_000_000 for _, (w, h) in decodes)


def test_stored_images_carry_no_metadata_of_the_upload():
    """Uploads are kept (and released with the votes), so their EXIF and text chunks,
    which can hold a camera's GPS position, are dropped when the image is re-encoded."""
    from PIL import PngImagePlugin

    exif = Image.Exif()
    exif[0x8827] = 100  # ISO speed: any tag is enough to show EXIF survives or not
    exif[0x010F] = "CameraMakerSecret"
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(jpeg, format="JPEG", exif=exif.tobytes())
    text = PngImagePlugin.PngInfo()
    text.add_text("Location", "51.5007,-0.1246")
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(png, format="PNG", pnginfo=text)

    for upload, secret in ((jpeg.getvalue(), b"CameraMakerSecret"), (png.getvalue(), b"51.5007")):
        assert secret in upload
        prepared = prepare_image(upload)
        assert secret not in prepared.data
        assert not Image.open(io.BytesIO(prepared.data)).getexif()
        assert (prepared.width, prepared.height) == (64, 48)
