"""``provider: router``: a model name whose answers come from one of several registry models,
chosen per request by a preference-trained router (``arena.routing``).

The router picks only among the targets the registry file names (``strong``/``weak``, or
``models`` with a ``cost`` each); nothing in a request can add a target or send a prompt or a
credential elsewhere. ``route`` makes the choice; ``stream_chat`` and ``stream_completion``
then delegate to the chosen target's provider, so streaming, usage, errors and cancellation
are the target's own. The gateway calls ``route`` itself to say which model answered; the
arena streams through ``stream_chat``, which reveals nothing about the choice.

Naming: an entry named ``router-<router>-<threshold>`` (e.g. ``router-mf-0.116``) may leave
out ``router`` and ``threshold``; the name supplies them. A router other than ``random`` is
a trained router's directory, or a name looked up as ``<data_dir>/routers/<name>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from arena.protocol import ChatCompletionRequest, CompletionRequest
from arena.providers.base import Delta, Provider, ProviderInfo

_NAME_RULE = re.compile(r"^router-(?P<router>.+)-(?P<threshold>\d*\.?\d+(?:[eE]-?\d+)?)$")
ROUTER_FIELDS = ("router", "strong", "weak", "models", "threshold", "embed_model")


class RoutedTarget(BaseModel):
    """One model a multi-model router may send a request to, with its price."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    cost: float = Field(ge=0, allow_inf_nan=False, description="Relative price per request.")
    router_model: str | None = Field(
        default=None, description="The model's name in the router's training data."
    )


def parse_router_name(name: str) -> tuple[str, float] | None:
    """``router-<router>-<threshold>`` → (router, threshold); None for any other name."""
    found = _NAME_RULE.match(name)
    if found is None:
        return None
    return found["router"], float(found["threshold"])


def complete_router_spec(spec: Any) -> None:
    """Check a ``provider: router`` entry on its own, filling ``router``/``threshold`` from a
    ``router-<router>-<threshold>`` name; fields of other providers must stay unset."""
    if spec.provider != "router":
        used = [f for f in ROUTER_FIELDS if getattr(spec, f) not in (None, [])]
        if used:
            raise ValueError(f"{', '.join(used)} only apply to provider 'router'")
        return
    parsed = parse_router_name(spec.name)
    if parsed is not None:
        spec.router = spec.router or parsed[0]
        spec.threshold = parsed[1] if spec.threshold is None else spec.threshold
    if not spec.router or spec.threshold is None:
        raise ValueError(
            "provider 'router' needs router and threshold (or a name router-<router>-<threshold>)"
        )
    if not 0.0 <= spec.threshold <= 1.0:
        raise ValueError("threshold must be between 0 and 1")
    if spec.models:
        if spec.weak:
            raise ValueError("give either strong and weak, or models with costs, not both")
        names = [t.name for t in spec.models]
        if len(set(names)) != len(names) or len(names) < 2:
            raise ValueError("models needs at least two different models")
        if spec.strong and spec.strong not in names:
            raise ValueError("strong must be one of models")
    elif not spec.strong or not spec.weak or spec.strong == spec.weak:
        raise ValueError("provider 'router' needs two different models as strong and weak")


def target_names(spec: Any) -> list[str]:
    return [t.name for t in spec.models] if spec.models else [spec.strong, spec.weak]


def check_router_targets(specs: Sequence[Any]) -> list[str]:
    """Problems with router targets across the registry (unknown, a router, a worker model)."""
    by_name = {s.name: s for s in specs}
    problems = []
    for spec in specs:
        if spec.provider != "router":
            continue
        for name in [*target_names(spec), *([spec.embed_model] if spec.embed_model else [])]:
            other = by_name.get(name)
            if other is None:
                problems.append(f"model {spec.name!r}: {name!r} is not a model of this registry")
            elif other.provider in ("router", "workers"):
                problems.append(
                    f"model {spec.name!r}: {name!r} is served by {other.provider!r}; a router "
                    "target must be a model the gateway builds itself"
                )
    return problems


@dataclass(frozen=True, slots=True)
class RoutedChoice:
    """Where one request goes: the registry name of the target and its provider."""

    model: str
    provider: Provider


def prompt_of(request: ChatCompletionRequest | CompletionRequest) -> str:
    """What the router reads: the last user message (RouteLLM's choice), or the prompt."""
    if isinstance(request, ChatCompletionRequest):
        for message in reversed(request.messages):
            if message.role == "user":
                return message.text()
        return request.messages[-1].text() if request.messages else ""
    prompt = request.prompt
    if isinstance(prompt, str):
        return prompt
    return prompt[0] if prompt and isinstance(prompt[0], str) else ""


class RouterProvider(Provider):
    """A routed model: ``route`` picks a registry target, the target's provider answers."""

    def __init__(
        self,
        name: str,
        router: Any,
        targets: Mapping[str, Provider],
        *,
        threshold: float,
        strong: str | None = None,
        weak: str | None = None,
        costs: Mapping[str, float] | None = None,
        router_models: Mapping[str, str] | None = None,
        owned: Sequence[Provider] = (),
    ) -> None:
        """Pair routing with ``strong``/``weak``; else ``costs`` per target (cascade).
        ``router_models``: target name → the router's name for it. ``owned``: providers
        built for this router alone, closed with it."""
        self.name = name
        self.router = router
        self.targets = dict(targets)
        self.threshold = threshold
        self.strong, self.weak = strong, weak
        self.costs = dict(costs or {})
        self._as_router = {t: (router_models or {}).get(t, t) for t in self.targets}
        self._from_router = {v: k for k, v in self._as_router.items()}
        self._owned = list(owned)
        infos = [p.info for p in self.targets.values()]
        capabilities = frozenset.intersection(*(i.capabilities for i in infos))
        self.info = ProviderInfo(
            kind="router",
            upstream_model=name,
            capabilities=capabilities,
            supports_completions=all(i.supports_completions for i in infos),
        )
        featurizer = getattr(router, "featurizer", None)
        self._embed = getattr(featurizer, "aembed", None)
        # A per-request Bradley-Terry fit takes milliseconds: keep it off the event loop.
        self._threaded = getattr(router, "kind", "") == "sw-ranking"

    def decide(self, prompt: str) -> str:
        """The target's registry name for ``prompt`` (features must be at hand)."""
        if not self.costs:
            rate = float(self.router.strong_win_rate([prompt])[0])
            return self.strong if rate >= self.threshold else self.weak  # type: ignore[return-value]
        from arena.routing.cascade import choose_models

        costs = {self._as_router[t]: c for t, c in self.costs.items()}
        strongest = self._as_router[self.strong] if self.strong else None
        (pick,) = choose_models(self.router, [prompt], costs, self.threshold, strongest=strongest)
        return self._from_router[pick]

    async def route(self, request: ChatCompletionRequest | CompletionRequest) -> RoutedChoice:
        prompt = prompt_of(request)
        if self._embed is not None:
            await self._embed([prompt])  # fills the featuriser's memory: decide never waits
        if self._threaded:
            name = await asyncio.to_thread(self.decide, prompt)
        else:
            name = self.decide(prompt)
        return RoutedChoice(name, self.targets[name])

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        return self._delegate(request, chat=True)

    def stream_completion(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        return self._delegate(request, chat=False)

    async def _delegate(
        self,
        request: ChatCompletionRequest | CompletionRequest,
        *,
        chat: bool,
        note: Callable[[str], None] | None = None,
    ) -> AsyncIterator[Delta]:
        choice = await self.route(request)
        if note is not None:
            note(choice.model)
        provider = choice.provider
        start = provider.stream_chat if chat else provider.stream_completion
        stream = aiter(start(request))  # type: ignore[arg-type]
        try:
            async for delta in stream:
                yield delta
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def health(self) -> bool:
        """Healthy while every target is: any of them may be asked to answer."""
        results = await asyncio.gather(*(p.health() for p in self.targets.values()))
        return all(results)

    async def aclose(self) -> None:
        for provider in self._owned:
            with contextlib.suppress(Exception):
                await provider.aclose()


class _NotingRouter(Provider):
    """A router as one caller sees it: each choice is also handed to ``note``."""

    def __init__(self, router: RouterProvider, note: Callable[[str], None]) -> None:
        self._router = router
        self._note = note
        self.info = router.info

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        return self._router._delegate(request, chat=True, note=self._note)

    def stream_completion(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        return self._router._delegate(request, chat=False, note=self._note)

    async def health(self) -> bool:
        return await self._router.health()


def noting_choice(provider: Any, sink: dict[Any, str], key: Any) -> Any:
    """``provider`` unchanged, or for a router a view that stores each target it picks in
    ``sink[key]``, so a caller (the arena) can record it without showing it."""
    if isinstance(provider, RouterProvider):
        return _NotingRouter(provider, lambda model: sink.__setitem__(key, model))
    return provider


# ---------------------------------------------------------------- building from the registry


def resolve_router_source(router: str, data_dir: Path) -> str | Path:
    """``random``, or the directory of a trained router (a path, else data_dir/routers/NAME)."""
    from arena.providers.registry import RegistryError

    if router == "random":
        return router
    for candidate in (Path(router).expanduser(), data_dir / "routers" / router):
        if (candidate / "router.json").is_file():
            return candidate
    raise RegistryError(
        f"router {router!r}: no trained router there or in {data_dir / 'routers' / router} "
        f"(train one with 'arena route train --router KIND --out DIR'); only 'random' needs "
        "no training"
    )


def build_router_provider(
    spec: Any,
    peers: Mapping[str, Any],
    settings: Any = None,
    client: Any = None,
    built: Mapping[str, Provider] | None = None,
) -> RouterProvider:
    """The provider of a ``provider: router`` entry. ``peers``: the registry's specs by name;
    ``built``: providers already built for them (shared); any other target is built here."""
    from arena.providers.registry import RegistryError, build_provider
    from arena.routing.errors import RoutingError
    from arena.routing.persistence import load_router
    from arena.routing.router import RandomRouter

    built = built or {}
    owned: list[Provider] = []

    def provider_for(name: str) -> Provider:
        if name in built:
            return built[name]
        if name not in peers:
            raise RegistryError(f"model {spec.name!r}: {name!r} is not a model of this registry")
        provider = build_provider(peers[name], settings, client)
        owned.append(provider)
        return provider

    data_dir = Path(getattr(settings, "data_dir", None) or "data")
    source = resolve_router_source(spec.router, data_dir)
    try:
        if source == "random":
            router: Any = RandomRouter()
        else:
            embed = provider_for(spec.embed_model) if spec.embed_model else None
            router = load_router(
                source, embed_provider=embed, cache_dir=data_dir / "embedding-cache"
            )
        names = target_names(spec)
        targets = {name: provider_for(name) for name in names}
        mapping = {t.name: t.router_model or t.name for t in spec.models}
        if spec.models:
            router.check_models(*mapping.values())
        elif getattr(router, "models", ()) and not (router.strong and router.weak):
            raise RoutingError("the router has no strong/weak pair: give models with costs")
    except RoutingError as e:
        raise RegistryError(f"model {spec.name!r}: {e}") from None
    return RouterProvider(
        spec.name,
        router,
        targets,
        threshold=float(spec.threshold),
        strong=spec.strong,
        weak=spec.weak,
        costs={t.name: t.cost for t in spec.models} or None,
        router_models=mapping,
        owned=owned,
    )
