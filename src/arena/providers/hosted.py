"""What the adapters for HTTP model APIs share (OpenAI-compatible, Anthropic, Gemini).

``HostedProvider`` holds a pooled ``UpstreamClient`` (its own, or one shared), reads the API
key from its environment variable at call time (so a rotated key needs no restart), probes
health within a hard deadline, turns upstream text into short sanitized messages
(``_clean``: never our key or the upstream's host) and closes the client. ``merge_turn``
is the message translation step both non-OpenAI formats need: they want user and
assistant turns to alternate, so consecutive turns of one role are merged.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from arena.providers.base import Provider, ProviderInfo
from arena.providers.upstream_errors import error_message_from_body, sanitize_upstream_text
from arena.providers.upstream_http import Timeouts, UpstreamClient

HEALTH_TIMEOUT_S = 5.0


class HostedProvider(Provider):
    """Base of the adapters that call an HTTP API. Subclasses name the header that carries
    the API key (and how), plus any header every request needs."""

    key_header: ClassVar[str] = "authorization"
    key_prefix: ClassVar[str] = "Bearer "
    fixed_headers: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        *,
        info: ProviderInfo,
        label: str,
        api_key_env: str | None,
        api_key: str | None,
        timeouts: Timeouts | None,
        params: dict[str, Any] | None,
        client: UpstreamClient | None,
    ) -> None:
        self.info = info
        self.upstream_model = info.upstream_model
        self.timeouts = timeouts or Timeouts()
        self.params = dict(params or {})
        self._label = label
        self._api_key_env = api_key_env
        self._api_key = api_key
        self._client = client or UpstreamClient(connect_timeout_s=self.timeouts.connect)

    def api_key(self) -> str | None:
        """The key given directly, else the one in the named environment variable."""
        if self._api_key:
            return self._api_key
        return os.environ.get(self._api_key_env) if self._api_key_env else None

    def _private_strings(self) -> tuple[str | None, ...]:
        """What a message shown to clients must never contain: our key, the upstream's host."""
        base_url = getattr(self, "base_url", None)
        host = urlsplit(base_url).hostname if base_url else None
        return (self.api_key(), host)

    def _clean(self, text: object, *, limit: int = 200) -> str:
        """Upstream text (an error message, an odd event) as a client may see it."""
        return sanitize_upstream_text(str(text), known=self._private_strings(), limit=limit)

    def _error_message(self, raw: bytes) -> tuple[str, dict[str, Any]]:
        """The sanitized message of an upstream error body, and the parsed body."""
        return error_message_from_body(raw, known=self._private_strings())

    def _headers(self) -> dict[str, str]:
        headers = {"accept": "text/event-stream", **self.fixed_headers}
        key = self.api_key()
        if key:
            headers[self.key_header] = self.key_prefix + key
        return headers

    async def _probe(self, url: str, headers: dict[str, str]) -> bool:
        """GET ``url``; healthy on a 200. The whole probe, body included, has one deadline,
        so an upstream that trickles bytes cannot hold a health check forever."""
        try:
            async with asyncio.timeout(min(HEALTH_TIMEOUT_S, self.timeouts.total)):
                status, _ = await self._client.get(url, headers)
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False
        return status == 200

    async def aclose(self) -> None:
        await self._client.aclose()


def merge_turn(turns: list[dict[str, Any]], role: str, key: str, items: list[Any]) -> None:
    """Append ``items`` (content blocks or parts, under ``key``) as a ``role`` turn, extending
    the last turn instead when it has the same role. Empty ``items`` add nothing."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})
