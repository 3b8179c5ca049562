"""Image references in chat messages: ``data:`` URLs split into media type and base64 data.

Hosted APIs want images as base64 blocks with an explicit media type; clients send them as
OpenAI-style ``image_url`` parts. Only image types the APIs accept are let through.
"""

from __future__ import annotations

import base64
import binascii
import re

from arena.errors import BadRequest

IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_DATA_URL = re.compile(
    r"^data:(?P<type>[\w.+-]+/[\w.+-]+)(?P<params>(;[^;,]*)*?);base64,(?P<data>.*)$", re.S
)


def is_data_url(url: str) -> bool:
    return url.startswith("data:")


def is_http_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def parse_data_url(url: str) -> tuple[str, str]:
    """``data:image/png;base64,AAAA`` -> ``("image/png", "AAAA")``; BadRequest otherwise."""
    match = _DATA_URL.match(url)
    if not match:
        raise BadRequest(
            "an image data URL must look like data:image/png;base64,...", param="messages"
        )
    media_type = match["type"].lower()
    if media_type == "image/jpg":
        media_type = "image/jpeg"
    if media_type not in IMAGE_MEDIA_TYPES:
        raise BadRequest(
            f"image type {media_type} is not supported; use one of {sorted(IMAGE_MEDIA_TYPES)}",
            param="messages",
        )
    data = re.sub(r"\s+", "", match["data"])
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("an image data URL does not hold valid base64", param="messages") from None
    return media_type, data
