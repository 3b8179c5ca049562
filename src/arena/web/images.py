"""Uploaded images: learn the real type and size, shrink large ones, hash — bounded memory.

The file name and the declared content type are ignored; only what Pillow reads counts.
Every check that can be made from the header is made before a single pixel is decoded:
the format (PNG, JPEG, WebP, GIF only) and the number of pixels decoding would take. A small
file can decode to a huge picture (a 100 KB PNG can hold 6000x6000 pixels, 144 MB decoded),
so that number is bounded by ``ImageLimits.max_pixels`` and anything over is refused with
413. A large JPEG is decoded at a reduced scale (``draft``) when it is going to be shrunk
anyway, so phone photos of 50 megapixels still fit. Pillow's own decompression-bomb guard
(``Image.MAX_IMAGE_PIXELS``, left at its default, process-wide) stays on beneath ours;
its ``DecompressionBombError`` is answered as the same 413.

Large images are resized so the longer side fits ``max_side`` and re-encoded in their own
format. Animated images keep only their first frame, so neither this server nor a model
ever decodes the others. The content hash of the final bytes is the image's id, so the
same picture uploaded twice is stored once (``arena.store.images`` writes and records it).

``ImagePreparer`` runs this in worker threads with at most ``max_concurrent_decodes``
decoding at once (one per app), so concurrent uploads cannot add up to a memory spike;
header checks do not wait for a decode slot.
"""

from __future__ import annotations

import base64
import hashlib
import io
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from PIL import Image, UnidentifiedImageError

from arena.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

ALLOWED_FORMATS: dict[str, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
# Decode a JPEG that is going to be shrunk at no less than this multiple of the final size,
# as Pillow's own thumbnail() does, so the resampling step still has detail to work with.
_DRAFT_GAP = 2


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = 8 * 1024 * 1024
    max_side: int = 1568
    # Pixels one decode may produce (4 bytes each in RGBA): 24 MP covers 6000x4000 camera
    # frames and 6K screenshots. Read from the header; anything larger is never decoded.
    max_pixels: int = 24_000_000
    # Decodes in flight per app; others wait their turn (memory: about max_pixels * 8 bytes
    # each, the decoded image and its converted copy).
    max_concurrent_decodes: int = 2

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_side, self.max_pixels, self.max_concurrent_decodes) < 1:
            raise ValueError("image limits must be positive")


@dataclass(frozen=True, slots=True)
class PreparedImage:
    data: bytes
    mime_type: str
    width: int
    height: int
    content_hash: str
    resized: bool

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.mime_type]

    def data_url(self) -> str:
        return data_url(self.data, self.mime_type)


def data_url(data: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def _damaged() -> UnsupportedMediaType:
    return UnsupportedMediaType(
        "The image file is damaged or truncated and cannot be decoded.", param="image"
    )


def _too_many_pixels(width: int, height: int, limits: ImageLimits) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The image is {width}x{height} pixels ({width * height:,}); at most "
        f"{limits.max_pixels:,} pixels are accepted. Scale it down and upload it again.",
        param="image",
        code="image_too_many_pixels",
    )


def _check_bytes(data: bytes, limits: ImageLimits) -> None:
    if not data:
        raise BadRequest("The image upload is empty.", param="image")
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"The image is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes.",
            param="image",
        )


def _target_size(width: int, height: int, max_side: int) -> tuple[int, int] | None:
    """The size after shrinking to fit ``max_side``, or None when it already fits."""
    if max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _decodes_scaled(image: Image.Image) -> bool:
    """A baseline JPEG decodes at 1/2, 1/4 or 1/8 scale (``draft``) in memory for the scaled
    size alone. A progressive one does not: libjpeg keeps every full-size coefficient until
    the last scan (a 4 MB, 13370x13370 CMYK file took 1.4 GB), so it gets the plain limit."""
    return image.format == "JPEG" and not (
        image.info.get("progressive") or image.info.get("progression")
    )


def open_header(data: bytes, limits: ImageLimits) -> Image.Image:
    """The image, opened lazily: format and size are read from the header, nothing decoded.

    Raises 413 when decoding would take more than ``limits.max_pixels`` pixels (for a JPEG
    that is going to be shrunk: at the reduced scale it will be decoded at), 415 when the
    file is not one of the four formats or is structurally broken.
    """
    _check_bytes(data, limits)
    try:
        # Only our four formats are even tried: exotic decoders are attack surface.
        probe = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
        if probe.width * probe.height > limits.max_pixels and not _decodes_scaled(probe):
            raise _too_many_pixels(probe.width, probe.height, limits)
        probe.verify()  # structure and checksums, without decoding; reopen after verify
        image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except Image.DecompressionBombError:
        raise PayloadTooLarge(
            "The image has too many pixels to decode safely.",
            param="image",
            code="image_too_many_pixels",
        ) from None
    except UnidentifiedImageError:
        raise UnsupportedMediaType(
            "The upload is not a PNG, JPEG, WebP or GIF image (checked by reading it, "
            "not by its name).",
            param="image",
        ) from None
    except PayloadTooLarge:
        raise
    except Exception:
        raise _damaged() from None
    if image.format not in ALLOWED_FORMATS:
        raise UnsupportedMediaType(
            f"Images must be PNG, JPEG, WebP or GIF; this file is {image.format or 'unknown'}.",
            param="image",
        )
    width, height = image.size
    target = _target_size(width, height, limits.max_side)
    if image.format == "JPEG" and target is not None:
        # Decode at 1/2, 1/4 or 1/8 scale: the size shrinks before any memory is taken.
        image.draft(None, (target[0] * _DRAFT_GAP, target[1] * _DRAFT_GAP))
    if image.width * image.height > limits.max_pixels:
        raise _too_many_pixels(width, height, limits)
    return image


def _encode(image: Image.Image, fmt: str, *, keep_jpeg_quality: bool = False) -> bytes:
    buf = io.BytesIO()
    save_kwargs: dict[str, Any] = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
    if keep_jpeg_quality and fmt == "JPEG":
        save_kwargs["quality"] = "keep"  # the upload's own tables: no second quality loss
    image.save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


def prepare_image(data: bytes, limits: ImageLimits = ImageLimits()) -> PreparedImage:
    """Check the header, decode (bounded), shrink if needed, and hash. Raises 400/413/415."""
    image = open_header(data, limits)
    fmt = image.format or "PNG"
    mime = ALLOWED_FORMATS[fmt]
    animated = bool(getattr(image, "is_animated", False))
    target = _target_size(image.width, image.height, limits.max_side)
    try:
        image.seek(0)
        image.load()  # the first frame only
    except Exception:
        raise _damaged() from None
    resized = False
    if target is not None:
        image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB")
        image.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
        if fmt == "JPEG" and image.mode != "RGB":
            image = image.convert("RGB")
        data = _encode(image, fmt)
        resized = True
    else:
        # Always re-encoded: what is stored (and later released with the votes) carries no
        # EXIF, GPS or text chunks of the upload. Animations keep their first frame alone.
        data = _encode(image, fmt, keep_jpeg_quality=not animated)
    return PreparedImage(
        data=data,
        mime_type=mime,
        width=image.width,
        height=image.height,
        content_hash=hashlib.sha256(data).hexdigest(),
        resized=resized,
    )


class ImagePreparer:
    """``prepare_image`` off the event loop, at most ``max_concurrent_decodes`` at once."""

    def __init__(self, limits: ImageLimits) -> None:
        self.limits = limits
        self._decode_slots: anyio.CapacityLimiter | None = None

    async def prepare(self, data: bytes) -> PreparedImage:
        # What the header alone refuses is refused at once, without queueing for a slot.
        await anyio.to_thread.run_sync(open_header, data, self.limits)
        if self._decode_slots is None:  # made on first use, inside the app's event loop
            self._decode_slots = anyio.CapacityLimiter(self.limits.max_concurrent_decodes)
        return await anyio.to_thread.run_sync(
            prepare_image, data, self.limits, limiter=self._decode_slots
        )
