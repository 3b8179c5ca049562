"""Uploaded images: decode with Pillow to learn the real type, shrink large ones, hash.

The file name and the declared content type are ignored; only what Pillow decodes counts.
Large images are resized so the longer side fits ``max_side`` and re-encoded in their own
format (animated GIFs keep their first frame). The content hash of the final bytes is the
image's id, so the same picture uploaded twice is stored once (``arena.store.images``
writes and records the bytes).
"""

from __future__ import annotations

import base64
import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from arena.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

ALLOWED_FORMATS: dict[str, str] = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = 8 * 1024 * 1024
    max_side: int = 1568
    max_pixels: int = 40_000_000  # beyond this the decode itself is refused (bomb guard)


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


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Only our four formats are even tried: exotic decoders are attack surface.
            probe = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
            probe.verify()  # structural check; the image must be reopened after verify
            image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise PayloadTooLarge(
                "The image has too many pixels to decode safely.", param="image"
            ) from None
        except UnidentifiedImageError:
            raise UnsupportedMediaType(
                "The upload is not a PNG, JPEG, WebP or GIF image (checked by decoding it, "
                "not by its name).",
                param="image",
            ) from None
        except Exception:
            raise UnsupportedMediaType(
                "The image file is damaged or truncated and cannot be decoded.", param="image"
            ) from None
    if image.format not in ALLOWED_FORMATS:
        raise UnsupportedMediaType(
            f"Images must be PNG, JPEG, WebP or GIF; this file is {image.format or 'unknown'}.",
            param="image",
        )
    if image.width * image.height > limits.max_pixels:
        raise PayloadTooLarge(
            f"The image is {image.width}x{image.height} pixels; at most "
            f"{limits.max_pixels:,} pixels are accepted.",
            param="image",
        )
    try:
        image.load()
    except Exception:
        raise UnsupportedMediaType(
            "The image file is damaged or truncated and cannot be decoded.", param="image"
        ) from None
    return image


def prepare_image(data: bytes, limits: ImageLimits = ImageLimits()) -> PreparedImage:
    """Validate by decoding, shrink if needed, and hash. Raises 400/413/415 errors."""
    if not data:
        raise BadRequest("The image upload is empty.", param="image")
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"The image is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes.",
            param="image",
        )
    image = _open(data, limits)
    fmt = image.format or "PNG"
    mime = ALLOWED_FORMATS[fmt]
    resized = False
    if max(image.width, image.height) > limits.max_side:
        if fmt == "GIF":
            image.seek(0)
        image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB")
        image.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
        if fmt == "JPEG" and image.mode != "RGB":
            image = image.convert("RGB")
        buf = io.BytesIO()
        save_kwargs = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
        image.save(buf, format=fmt, **save_kwargs)
        data = buf.getvalue()
        resized = True
    return PreparedImage(
        data=data,
        mime_type=mime,
        width=image.width,
        height=image.height,
        content_hash=hashlib.sha256(data).hexdigest(),
        resized=resized,
    )
