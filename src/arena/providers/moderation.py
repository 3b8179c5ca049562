"""A client for OpenAI-compatible moderation endpoints (``POST {base}/moderations``).

It implements ``arena.battles.moderation.Moderator``. The whole call runs under one deadline
(``timeout_s``), so a slow or silent service never holds up a chat. When the check cannot
be done (network error, timeout, error status, malformed body) the ``fail_mode`` decides:
``open`` lets the text through, ``closed`` refuses it with a retry message. Either way the
result carries ``error`` so callers can log and count failures.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import httpx

from arena.battles.moderation import DEFAULT_FLAGGED_MESSAGE, ModerationResult

FailMode = Literal["open", "closed"]
UNAVAILABLE_MESSAGE = (
    "We could not check your message right now, so it was not sent. Please try again shortly."
)


class OpenAIModerationClient:
    """Moderation through an OpenAI-compatible ``/moderations`` endpoint.

    ``base_url`` includes the API prefix (e.g. ``https://api.openai.com/v1``). Pass
    ``http_client`` to share a pool; otherwise the client owns one (close with ``aclose``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = "omni-moderation-latest",
        timeout_s: float = 5.0,
        fail_mode: FailMode = "open",
        flagged_message: str = DEFAULT_FLAGGED_MESSAGE,
        http_client: httpx.AsyncClient | None = None,
    ):
        if fail_mode not in ("open", "closed"):
            raise ValueError("fail_mode must be 'open' or 'closed'")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.url = base_url.rstrip("/") + "/moderations"
        self.model = model
        self.timeout_s = timeout_s
        self.fail_mode = fail_mode
        self.flagged_message = flagged_message
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = http_client is None
        self._client = http_client or httpx.AsyncClient(timeout=httpx.Timeout(timeout_s))

    async def check(self, text: str) -> ModerationResult:
        payload: dict[str, Any] = {"input": text}
        if self.model:
            payload["model"] = self.model
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._client.post(self.url, json=payload, headers=self._headers)
                body = response.json() if response.is_success else None
        except TimeoutError:
            return self._failed(f"moderation timed out after {self.timeout_s:g}s")
        except httpx.HTTPError as e:
            return self._failed(f"moderation request failed: {type(e).__name__}: {e}")
        except ValueError:
            return self._failed("moderation returned a body that is not JSON")
        if body is None:
            return self._failed(
                f"moderation returned HTTP {response.status_code}: {_error(response)}"
            )
        return self._parse(body)

    def _parse(self, body: Any) -> ModerationResult:
        try:
            results = body["results"]
            if not isinstance(results, list) or not results:
                raise TypeError("results must be a non-empty list")
            flagged = False
            categories: list[str] = []
            for item in results:
                if not isinstance(item["flagged"], bool):
                    raise TypeError("flagged must be a boolean")
                flagged = flagged or item["flagged"]
                for name, hit in (item.get("categories") or {}).items():
                    if hit is True and name not in categories:
                        categories.append(name)
        except (KeyError, TypeError, AttributeError) as e:
            return self._failed(f"moderation response has an unexpected shape: {e}")
        if flagged:
            return ModerationResult(
                flagged=True, categories=tuple(categories), message=self.flagged_message
            )
        return ModerationResult(flagged=False, categories=tuple(categories))

    def _failed(self, reason: str) -> ModerationResult:
        if self.fail_mode == "closed":
            return ModerationResult(
                flagged=True,
                categories=("moderation_unavailable",),
                message=UNAVAILABLE_MESSAGE,
                error=reason,
            )
        return ModerationResult(flagged=False, error=reason)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _error(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
