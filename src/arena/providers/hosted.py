"""What the adapters for HTTP model APIs share (OpenAI-compatible, Anthropic, Gemini).

``HostedProvider`` holds a pooled ``UpstreamClient`` (its own, or one shared), reads the API
key from its environment variable at call time (so a rotated key needs no restart), probes
health within a hard deadline and closes the client. ``merge_turn`` is the message
translation step both non-OpenAI formats need: they want user and assistant turns to
alternate, so consecutive turns of one role are merged.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

import aiohttp

from arena.providers.base import Provider, ProviderInfo
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
