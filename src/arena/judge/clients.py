"""The providers the judge commands call, built on the gateway's shared HTTP client.

Every OpenAI-compatible model shares one ``UpstreamClient`` (one aiohttp pool) instead of
a pool each, and ``ProviderSet.aclose`` closes the providers and then the shared client(s)
once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def make_judge_client(settings: Any) -> Any:
    """One shared client with the settings' connect limit."""
    from arena.providers.upstream_http import UpstreamClient

    return UpstreamClient(
        connect_timeout_s=settings.connect_timeout_s, max_connections=4096, shared=True
    )


def build_model_provider(spec: Any, settings: Any, client: Any) -> Any:
    """The registry's provider for ``spec``; OpenAI-compatible ones use ``client``."""
    from arena.providers.registry import build_provider

    return build_provider(spec, settings, client)


@dataclass
class ProviderSet:
    """Providers by model name (one, or a list of instances) and the clients they share."""

    providers: dict[str, Any]
    clients: list[Any] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.providers[name]

    async def aclose(self) -> None:
        try:
            for entry in self.providers.values():
                for provider in entry if isinstance(entry, list) else [entry]:
                    await provider.aclose()
        finally:
            for client in self.clients:
                await client.close()


def build_provider_set(
    specs: dict[str, Any], names: list[str], settings: Any, *, clients: int = 1
) -> ProviderSet:
    """Providers for ``names``. ``clients`` > 1 spreads each OpenAI-compatible model over
    that many shared clients (one provider instance each), and the value becomes a list;
    with ``clients`` = 1 each name maps to a single provider."""
    from arena.providers.registry import OPENAI_COMPATIBLE_DEFAULTS

    needed = any(specs[n].provider in OPENAI_COMPATIBLE_DEFAULTS for n in names)
    shared = [make_judge_client(settings) for _ in range(max(1, clients))] if needed else []
    out: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        spec = specs[name]
        if clients > 1 and spec.provider in OPENAI_COMPATIBLE_DEFAULTS:
            out[name] = [build_model_provider(spec, settings, c) for c in shared]
        else:
            out[name] = build_model_provider(spec, settings, shared[0] if shared else None)
    return ProviderSet(out, shared)
