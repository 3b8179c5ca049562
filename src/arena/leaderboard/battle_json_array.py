"""A JSON array of battles, re-cut into JSON Lines chunks so it streams like a ``.jsonl`` file.

No fast reader streams the items of one big JSON document, and decoding it whole costs
several times the file in memory. Instead each block of bytes is scanned with NumPy for the
top-level structure (quotes, escapes, brackets, commas), and rewritten in place: line breaks
(only whitespace outside strings in valid JSON) become spaces, the commas between items become
line breaks, and the array's brackets become spaces. What is left is one item per line,
which the JSON Lines parser reads. Anything malformed — a scalar item, a trailing comma, a
cut-off item — surfaces as a parse error, and the caller then names the bad item.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

if TYPE_CHECKING:
    import hashlib

OPEN, CLOSE, COMMA, QUOTE = 1, -1, 2, 3
_KIND = np.zeros(256, dtype=np.int8)
_KIND[[ord("{"), ord("[")]] = OPEN
_KIND[[ord("}"), ord("]")]] = CLOSE
_KIND[ord(",")] = COMMA
_KIND[ord('"')] = QUOTE
_SPECIAL = tuple(np.uint8(ord(c)) for c in '{}[],"')
_BACKSLASH = ord("\\")
_SPACES_FOR_BREAKS = bytes.maketrans(b"\n\r", b"  ")


class ArrayFormatError(ValueError):
    """The bytes after the last complete item are not the end of a JSON array."""


def _escaped(data: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """Mask of the quotes escaped inside a string: those after an odd run of backslashes."""
    escaped = np.zeros(quotes.size, dtype=bool)
    after_backslash = np.flatnonzero(data[np.maximum(quotes - 1, 0)] == _BACKSLASH)
    for i in after_backslash.tolist():  # rare outside code and quoted speech
        start = end = int(quotes[i])
        while start > 0 and data[start - 1] == _BACKSLASH:
            start -= 1
        escaped[i] = (end - start) % 2 == 1
    return escaped


def items_as_lines(block: bytes, depth: int) -> tuple[bytes, int]:
    """The complete top-level items at the start of ``block`` as JSON Lines, and how many bytes
    of ``block`` they used. ``block`` starts outside any string at array depth ``depth`` (0
    before the opening bracket, 1 between items); the rest is carried to the next block."""
    data = np.frombuffer(block, dtype=np.uint8)
    mask = data == _SPECIAL[0]
    hit = np.empty_like(mask)
    for char in _SPECIAL[1:]:  # a few compares beat a lookup table over every byte
        mask |= np.equal(data, char, out=hit)
    positions = np.flatnonzero(mask)
    del mask, hit
    kinds = _KIND[data[positions]]
    is_quote = kinds == QUOTE
    quote_at = np.flatnonzero(is_quote)
    is_quote[quote_at[_escaped(data, positions[quote_at])]] = False
    # Inside a string when an odd number of real quotes came before (a uint8 sum keeps parity).
    in_string = (np.cumsum(is_quote, dtype=np.uint8) - is_quote) & 1
    structural = (in_string == 0) & (kinds != QUOTE)
    positions, kinds = positions[structural], kinds[structural]
    step = np.where(kinds == COMMA, 0, kinds)
    after = np.cumsum(step, dtype=np.int32) + depth
    before = after - step
    ends = positions[(kinds == CLOSE) & (after == 1)]
    if ends.size == 0:
        return b"", 0
    used = int(ends[-1]) + 1
    text = bytearray(block[:used].translate(_SPACES_FOR_BREAKS))
    lines = np.frombuffer(text, dtype=np.uint8)
    within = positions < used
    lines[positions[within & (kinds == COMMA) & (before == 1)]] = ord("\n")
    lines[positions[within & (kinds == OPEN) & (after == 1)]] = ord(" ")
    return bytes(text), used


def json_array_chunks(
    file: BinaryIO, digest: hashlib._Hash, block_size: int = 16 << 20
) -> Iterator[bytes]:
    """JSON Lines chunks holding the items of the JSON array in ``file``, in order; every byte
    read is added to ``digest``. Raises ``ArrayFormatError`` when the array does not end."""
    carry = b""
    depth = 0
    while block := file.read(block_size):
        digest.update(block)
        data = carry + block if carry else block
        lines, used = items_as_lines(data, depth)
        carry = data[used:]
        if used:
            depth = 1
            yield lines
    tail = carry.strip()
    if depth == 0 and tail.startswith(b"["):
        tail = tail[1:].lstrip()  # an array without items
    if tail != b"]":
        raise ArrayFormatError("the JSON array is cut short or has a stray value after an item")
