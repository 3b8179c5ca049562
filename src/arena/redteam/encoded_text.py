"""Decodings of the encoded runs a model may hide a secret in: base64 and hex.

Each decoder finds maximal runs of its alphabet (with the separators models put in) and yields
every plausible decoding, at every alignment, so words glued before the encoded part
(``key:c2st…``, ``id 736b…``) cost nothing. Garbage decodings of ordinary words are harmless,
as a canary is long and random. Every pass is a regex scan or a C-level decode: linear.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterator

# Base64 (standard or URL-safe) as models write it: wrapped lines, padding or none.
_B64_RUN = re.compile(r"[A-Za-z0-9+/_\-=\s]{16,}")
_B64_NOISE = re.compile(r"[\s=]+")
_URLSAFE = str.maketrans("-_", "+/")
# Hex as models write it: compact, in spaced or colon/comma/dash-separated bytes, with 0x or \x
# prefixes, upper or lower case, or URL percent-escapes.
_HEX_RUN = re.compile(r"[0-9A-Fa-fxX\\%\s:,;\-]{16,}")
_HEX_NOISE = re.compile(r"0[xX]|[^0-9A-Fa-f]")


def _text_runs(raw: bytes, min_chars: int) -> list[str]:
    """The stretches of ``raw`` that read as text, ``min_chars`` long or more.

    Decoding ordinary words yields random bytes, which break into short pieces between invalid
    UTF-8 and control bytes; a secret someone encoded comes back whole. Keeping only long
    stretches cuts the decoded text to search by orders of magnitude.
    """
    text = raw.decode("utf-8", errors="replace")
    return re.findall(rf"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]{{{min_chars},}}", text)


def _quads(compact: str, k: int) -> str:
    """``compact[k:]`` cut or filled to whole 4-character groups. Filling with ``A`` (zero bits)
    rather than ``=`` lets groups of many runs decode in one call: the decoder would stop at
    padding, while ``A`` adds at most two bytes after the run's last real byte."""
    part = compact[k:]
    extra = len(part) % 4
    return part[: len(part) - 1] if extra == 1 else part + "A" * ((4 - extra) % 4)


def base64_decodings(text: str, min_bytes: int = 8) -> Iterator[str]:
    """The text in every plausible base64 decoding of the runs in ``text``, at each of the 4
    alignments (pieces of ``min_bytes`` characters or more)."""
    need = max(16, -(-min_bytes * 4 // 3))
    runs = [_B64_NOISE.sub("", run.group()) for run in _B64_RUN.finditer(text)]
    runs = [run.translate(_URLSAFE) for run in runs if len(run) >= need]
    for k in range(4):
        # A 4-character group never straddles two runs, so one call decodes them all.
        joined = "".join(_quads(run, k) for run in runs if len(run) - k >= need)
        try:
            raw = binascii.a2b_base64(joined)
        except (binascii.Error, ValueError):  # pragma: no cover - whole groups always decode
            continue
        yield from _text_runs(raw, min_bytes)


def hex_decodings(text: str, min_bytes: int = 8) -> Iterator[str]:
    """The text in every decoding of the hex runs in ``text``, at both nibble alignments (a stray
    hex letter before the bytes shifts them by one), in pieces of ``min_bytes`` or more."""
    for run in _HEX_RUN.finditer(text):
        digits = _HEX_NOISE.sub("", run.group())
        for k in range(2):
            part = digits[k:]
            part = part[: len(part) - len(part) % 2]
            if len(part) >= 2 * min_bytes:
                yield from _text_runs(bytes.fromhex(part), min_bytes)


# name -> decoder; each takes (text, min_bytes) and yields pieces of decoded text.
DECODERS: dict[str, Callable[[str, int], Iterator[str]]] = {
    "base64": base64_decodings,
    "hex": hex_decodings,
}
# A letter that no look-alike fold changes: decodings joined by it cannot form a match across
# the join, and no base64 or hex run crosses it.
SPLITTER = "\u0436"  # CYRILLIC SMALL LETTER ZHE
