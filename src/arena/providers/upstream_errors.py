"""How an upstream's failure becomes our typed error: the status mapping, and the message.

An upstream's error body is text a remote server chose. It reaches our clients only as a
short, sanitized message (``sanitize_upstream_text``): one line, at most
``MAX_MESSAGE_CHARS`` characters, with URLs, host names, IP addresses and anything that
looks like a credential replaced by a placeholder. The HTTP status mapping
(``error_for_status``) decides the client-facing status and error type; the upstream's
words only ever fill in the message.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from arena.errors import (
    ArenaError,
    BadRequest,
    ContextLengthExceeded,
    PayloadTooLarge,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)

MAX_MESSAGE_CHARS = 200
# Bounds the work of the patterns below on a huge body; the message is cut far shorter.
_SCAN_CHARS = 4000

# Phrases the engines and hosted APIs use when a prompt does not fit the context window.
_CONTEXT_PATTERNS = re.compile(
    r"context[_ ]length|context window|maximum context|prompt is too long|too many tokens|"
    r"input token count .* exceeds|exceeds the maximum number of tokens|"
    r"must be <= \d+|input is too long|longer than the model",
    re.IGNORECASE,
)

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S+")
# "Authorization: Bearer x", "api_key=x", "password: x": keep the name, drop the value.
# "max_tokens: 10" is a count, not a token: plural "tokens" is left alone.
_NAMED_SECRET = re.compile(
    r"(?i)\b([\w-]*(?:key|token|secret|password|passwd|credentials?|authorization))"
    r"(\s*[:=]\s*)(?:bearer\s+|basic\s+)?(\"[^\"]*\"|'[^']*'|[^\s,;]+)"
)
_SCHEME_SECRET = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# Credential shapes of common providers (OpenAI/Anthropic sk-, Google AIza, Hugging Face,
# GitHub, Slack, AWS access keys, JWTs).
_KNOWN_KEY = re.compile(
    r"\b(?:(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,}|hf_[A-Za-z0-9]{16,}|"
    r"gh[pousr]_[A-Za-z0-9]{16,}|xox[abprs]-[A-Za-z0-9-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16}|"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"
)
# A long unbroken run of letters and digits (hex digests, base64 tokens); model names
# are made of short segments, so they survive.
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]*[A-Za-z0-9+/=]{24,}[A-Za-z0-9+/=_-]*")
# Candidates only: ``ipaddress`` decides what is an address.
_IPV4_CANDIDATE = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])")
_IPV6_CANDIDATE = re.compile(
    r"(?<![\w:])\[?(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]*(?:%\w+)?\]?(?::\d{1,5})?"
)
_HOST_PORT = re.compile(r"\b(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+):\d{1,5}\b")
_HOST_NAME = re.compile(
    r"\b(?:[A-Za-z0-9-]+\.)+(?:com|net|org|io|ai|dev|app|cloud|co|us|eu|uk|de|cn|"
    r"internal|local|localdomain|localhost|lan|home|corp|intranet|svc|cluster|goog)\b"
    r"|\blocalhost\b",
    re.IGNORECASE,
)
_TAG = re.compile(r"<[^<>]{0,200}>")  # an HTML error page's markup
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r"\s+")


def _redact_ipv4(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.IPv4Address(text.split(":", 1)[0])
    except ValueError:
        return text
    return "[address]"


def _redact_ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    candidate = text[1:].split("]", 1)[0] if text.startswith("[") else text
    # Without brackets a trailing ":port" cannot be told from a last group: try both.
    for address in (candidate, candidate.rsplit(":", 1)[0]):
        try:
            ipaddress.IPv6Address(address.split("%", 1)[0])
        except ValueError:
            continue
        return "[address]"
    return text


def _redact_long_token(match: re.Match[str]) -> str:
    text = match.group(0)
    return "[redacted]" if any(c.isdigit() for c in text) else text


def sanitize_upstream_text(
    text: str, *, known: Iterable[str | None] = (), limit: int = MAX_MESSAGE_CHARS
) -> str:
    """``text`` from an upstream, fit to show a client: one line, at most ``limit``
    characters, no URLs, hosts, addresses or credentials. ``known`` are exact strings to
    hide as well (our API key, the upstream's host name)."""
    text = _CONTROL.sub(" ", _TAG.sub(" ", text[:_SCAN_CHARS]))
    for secret in sorted({k for k in known if k and len(k) >= 4}, key=len, reverse=True):
        text = re.sub(re.escape(secret), "[redacted]", text, flags=re.IGNORECASE)
    text = _URL.sub("[url]", text)
    text = _SCHEME_SECRET.sub(r"\1 [redacted]", text)
    text = _NAMED_SECRET.sub(r"\1\2[redacted]", text)
    text = _KNOWN_KEY.sub("[redacted]", text)
    text = _IPV6_CANDIDATE.sub(_redact_ipv6, text)
    text = _IPV4_CANDIDATE.sub(_redact_ipv4, text)
    text = _HOST_PORT.sub("[host]", text)
    text = _HOST_NAME.sub("[host]", text)
    text = _LONG_TOKEN.sub(_redact_long_token, text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text or "no error message"


def parse_retry_after(headers: Mapping[str, str], default: float = 1.0) -> float:
    """Seconds from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def is_context_length_message(message: str) -> bool:
    return bool(_CONTEXT_PATTERNS.search(message))


def error_for_status(
    status: int,
    message: str,
    *,
    label: str,
    headers: Mapping[str, str] | None = None,
    context_length: bool | None = None,
    credential_problem: bool = False,
) -> ArenaError:
    """Map an upstream HTTP error to our typed error. ``message`` must already be
    sanitized (``error_message_from_body`` does it).

    The client's own mistakes (400, 413, 422) keep the upstream's (sanitized) words;
    problems with our credentials or configuration (401, 403, 404) are ours, so they are
    upstream errors (502).
    """
    if credential_problem or status in (401, 403):
        return UpstreamError(f"{label} refused our credentials or account ({status}): {message}")
    if status == 429:
        retry = parse_retry_after(headers or {})
        return RateLimited(f"{label} is rate limiting us: {message}", retry_after_s=retry)
    if status == 413:
        return PayloadTooLarge(message)
    if status == 408:
        return UpstreamTimeout(f"{label} timed out ({status}): {message}")
    if status == 404:
        return UpstreamError(f"{label} answered 404 (check upstream_model/base_url): {message}")
    if 400 <= status < 500:
        too_long = (
            context_length if context_length is not None else is_context_length_message(message)
        )
        return ContextLengthExceeded(message) if too_long else BadRequest(message)
    return UpstreamError(f"{label} failed with HTTP {status}: {message}")


def _raw_message(raw: bytes) -> tuple[str, dict[str, Any]]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace"), {}
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]  # Gemini's array-shaped stream errors
    if not isinstance(doc, dict):
        return str(doc), {}
    err = doc.get("error", doc)
    if isinstance(err, str):
        return err, doc
    if isinstance(err, dict):
        message = err.get("message") or err.get("msg") or doc.get("message") or doc.get("detail")
        return str(message or json.dumps(err)), doc
    return str(doc.get("message") or doc.get("detail") or doc), doc


def error_message_from_body(
    raw: bytes, *, known: Iterable[str | None] = ()
) -> tuple[str, dict[str, Any]]:
    """The sanitized human message in an error body of any of the common shapes, and the
    parsed body (for codes and types; never shown to clients as it is)."""
    message, doc = _raw_message(raw)
    return sanitize_upstream_text(message, known=known), doc
