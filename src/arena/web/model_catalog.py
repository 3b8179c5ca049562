"""The registry's models as the arena sees them: which have a provider, which are in
outage (probed in the background by ``model_health``, never moved by a battle), which a
user may pick by name, and the facts shown once names are revealed (demo, organization).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from arena.providers.base import Provider
from arena.providers.registry import ModelSpec
from arena.web.model_health import ModelHealth


@dataclass
class ModelCatalog:
    specs: Sequence[ModelSpec]
    providers: dict[str, Provider]
    # Models in outage get no battles (probed in the background; see model_health).
    health: ModelHealth | None = None

    def __post_init__(self) -> None:
        self.specs = tuple(self.specs)
        self._by_name = {s.name: s for s in self.specs}

    def unavailable(self) -> frozenset[str]:
        """Models that get no battles now: no provider, or in outage."""
        missing = {s.name for s in self.specs if s.name not in self.providers}
        if self.health is not None:
            missing |= self.health.down
        return frozenset(missing)

    def is_demo(self, name: str) -> bool:
        spec = self._by_name.get(name)
        provider = self.providers.get(name)
        return (spec is not None and spec.provider == "demo") or (
            provider is not None and provider.info.kind == "demo"
        )

    def is_vision(self, name: str) -> bool:
        spec = self._by_name.get(name)
        return spec is not None and spec.is_vision

    def organization(self, name: str) -> str:
        spec = self._by_name.get(name)
        return spec.organization if spec else ""

    def named_models(self) -> list[ModelSpec]:
        """Models a user may pick by name (side by side, direct)."""
        gone = self.unavailable()
        return [
            s
            for s in self.specs
            if s.arena.enabled and not s.arena.anonymous_only and s.name not in gone
        ]

    @property
    def only_demo(self) -> bool:
        live = [s for s in self.specs if s.name in self.providers and s.arena.enabled]
        return all(self.is_demo(s.name) for s in live)
