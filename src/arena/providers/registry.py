"""The model registry file (YAML): which models exist, how to reach them, how the arena uses them.

Validated once at start; every bad field is reported with its path so a user can fix the
file in one go. ``build_providers`` turns the validated specs into ``Provider`` objects;
``default_registry`` is what ``arena serve`` uses when no file is configured (built-in demo
models, plus the models of an Ollama server answering on 127.0.0.1:11434);
``registry_for(settings)`` picks between the two.

Per-kind notes: OpenAI-compatible kinds merge ``params`` into each request (fields the
client left out); ``demo`` reads ``params.style`` (plain, lists, bold, mixed) and
``params.tokens_per_s``; ``local`` loads ``model_path`` on ``device``; ``workers`` models
are served by registered ``arena worker`` processes, so ``build_providers`` leaves them to
the gateway's worker pool (their ``api_key_env`` is the key the gateway sends to the
OpenAI-compatible upstreams registered for them; no worker chooses it).

Example::

    models:
      - name: llama-3-8b
        provider: vllm
        base_url: http://gpu-host:8000/v1
        params: {temperature: 0.7, max_tokens: 1024}
        organization: Meta
        license: Llama 3
      - name: claude-3-5-sonnet
        provider: anthropic
        api_key_env: ANTHROPIC_API_KEY
        capabilities: [text, vision]
        arena: {sampling_weight: 2.0}
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from arena.providers.router import RoutedTarget, check_router_targets, complete_router_spec
from arena.yaml_files import read_yaml, validate_document

# Engines that speak the OpenAI API, with the base URL they listen on by default.
OPENAI_COMPATIBLE_DEFAULTS: dict[str, str | None] = {
    "openai": "https://api.openai.com/v1",
    "openai_compatible": None,
    "vllm": "http://127.0.0.1:8000/v1",
    "sglang": "http://127.0.0.1:30000/v1",
    "tgi": "http://127.0.0.1:8080/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
    "ollama": "http://127.0.0.1:11434/v1",
}
# Hosted APIs with their own wire format, and where they live.
HOSTED_API_DEFAULTS: dict[str, str] = {
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}
ProviderKind = Literal[
    "openai",
    "openai_compatible",
    "vllm",
    "sglang",
    "tgi",
    "llamacpp",
    "ollama",
    "anthropic",
    "gemini",
    "local",
    "workers",
    "demo",
    "router",
]


class RegistryError(ValueError):
    """The registry file is missing, unreadable or invalid; the message lists every problem."""


class ArenaFlags(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    anonymous_only: bool = Field(default=False, description="Only appears in anonymous battles.")
    sampling_weight: float = Field(default=1.0, ge=0)
    battle_targets: list[str] = Field(default_factory=list, description="Preferred rivals.")
    strict_targets: bool = Field(default=False, description="Only ever meets battle_targets.")


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\s/][^\s]*$")
    provider: ProviderKind
    base_url: str | None = None
    upstream_model: str | None = Field(default=None, description="Name at the upstream.")
    api_key_env: str | None = Field(default=None, description="Env var holding the API key.")
    model_path: str | None = Field(default=None, description="Local model dir (provider: local).")
    device: str = "auto"
    max_concurrency: int = Field(default=4, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    params: dict[str, Any] = Field(default_factory=dict, description="Default generation params.")
    capabilities: list[Literal["text", "vision", "embeddings", "completions"]] = Field(
        default_factory=lambda: ["text"]
    )
    organization: str = ""
    license: str = ""
    description: str = ""
    link: str | None = None
    aliases: list[str] = Field(default_factory=list, description="Other names it may call itself.")
    arena: ArenaFlags = Field(default_factory=ArenaFlags)
    # provider: router (arena.providers.router): which registry models it routes between.
    router: str | None = Field(default=None, description="random, a router name or directory.")
    strong: str | None = None
    weak: str | None = None
    models: list[RoutedTarget] = Field(default_factory=list, description="Targets with costs.")
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    embed_model: str | None = Field(default=None, description="Embeds prompts for the router.")
    _peers: dict[str, ModelSpec] = PrivateAttr(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/") if v else v

    @field_validator("device")
    @classmethod
    def _known_device(cls, v: str) -> str:
        if v in ("auto", "cpu", "mps") or re.fullmatch(r"cuda(:\d+)?", v):
            return v
        raise ValueError("must be auto, cpu, cuda, cuda:N or mps")

    @model_validator(mode="after")
    def _provider_needs(self) -> ModelSpec:
        complete_router_spec(self)
        if self.provider == "local" and not self.model_path:
            raise ValueError("provider 'local' needs model_path (a directory or hub id)")
        if self.provider == "openai_compatible" and not self.base_url:
            raise ValueError("provider 'openai_compatible' needs base_url")
        hosted_default = self.provider in HOSTED_API_DEFAULTS or self.provider == "openai"
        if hosted_default and not self.base_url and not self.api_key_env:
            raise ValueError(
                f"provider {self.provider!r} at its public API needs api_key_env "
                "(the environment variable holding the key)"
            )
        return self

    @property
    def upstream_name(self) -> str:
        return self.upstream_model or self.name

    @property
    def resolved_base_url(self) -> str | None:
        if self.base_url:
            return self.base_url
        return OPENAI_COMPATIBLE_DEFAULTS.get(self.provider) or HOSTED_API_DEFAULTS.get(
            self.provider
        )

    def api_key(self) -> str | None:
        """The key from the named environment variable (read at call time, never stored)."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    @property
    def is_vision(self) -> bool:
        return "vision" in self.capabilities


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RegistryFile:
        seen: set[str] = set()
        for spec in self.models:
            if spec.name in seen:
                raise ValueError(f"model name {spec.name!r} appears more than once")
            seen.add(spec.name)
        return self

    @model_validator(mode="after")
    def _router_targets(self) -> RegistryFile:
        problems = check_router_targets(self.models)
        if problems:
            raise ValueError("; ".join(problems))
        peers = {spec.name: spec for spec in self.models}
        for spec in self.models:
            if spec.provider == "router":
                spec._peers = peers  # what build_provider builds the targets from
        return self

    @model_validator(mode="after")
    def _targets_exist(self) -> RegistryFile:
        # A model with strict targets meets only them: one naming a model that is not in the
        # file (a typo) would silently never battle. Plain targets are only a preference.
        names = {spec.name for spec in self.models}
        for spec in self.models:
            targets = spec.arena.battle_targets
            unknown = [
                t
                for t in targets
                if t == spec.name or (spec.arena.strict_targets and t not in names)
            ]
            if unknown:
                raise ValueError(
                    f"model {spec.name!r}: arena.battle_targets {unknown} are not other models "
                    "of this registry"
                )
        return self


def parse_registry(doc: Any, source: str = "<registry>") -> RegistryFile:
    return validate_document(
        {} if doc is None else doc,
        RegistryFile,
        source=source,
        error=RegistryError,
        list_key="models",
        name_key="name",
        label=lambda i, name: f"models[{i}] ({name})" if name else None,
    )


def load_registry(path: str | Path) -> RegistryFile:
    """Read and validate a registry YAML file, raising ``RegistryError`` with every problem."""
    path = Path(path)
    return parse_registry(read_yaml(path, RegistryError, "model registry"), str(path))


# ---------------------------------------------------------------- building providers


def build_providers(
    registry: RegistryFile, settings: Any = None, client: Any = None
) -> dict[str, Any]:
    """One ``Provider`` per model of the registry, keyed by public model name.

    ``workers`` models are skipped: registered workers serve them. ``client``: a shared HTTP
    client for OpenAI-compatible models. Providers own HTTP clients or loaded models; close
    them with ``await provider.aclose()``.
    """
    providers: dict[str, Any] = {}
    for spec in registry.models:
        if spec.provider in ("workers", "router"):
            continue
        providers[spec.name] = build_provider(spec, settings, client)
    # Second pass: a router wraps the providers just built instead of building its own.
    for spec in registry.models:
        if spec.provider == "router":
            providers[spec.name] = build_provider(spec, settings, client, built=providers)
    return providers


def build_provider(
    spec: ModelSpec, settings: Any = None, client: Any = None, built: Any = None
) -> Any:
    """The provider for ``spec``. ``client``: a shared HTTP client that OpenAI-compatible
    models use instead of a private one (one connection pool for many upstreams). ``built``:
    providers a router reuses for its targets (it builds any other one itself)."""
    from arena.providers.upstream_http import Timeouts

    if spec.provider == "router":
        from arena.providers.router import build_router_provider

        return build_router_provider(spec, spec._peers, settings, client, built)

    timeouts = Timeouts.from_settings(settings, spec.timeout_s)
    capabilities = frozenset(spec.capabilities)
    if spec.provider in OPENAI_COMPATIBLE_DEFAULTS:
        from arena.providers.openai_compat import OpenAICompatProvider

        base_url = spec.resolved_base_url
        assert base_url is not None  # the validator guarantees it
        return OpenAICompatProvider(
            base_url=base_url,
            upstream_model=spec.upstream_name,
            kind=spec.provider,
            api_key_env=spec.api_key_env,
            timeouts=timeouts,
            params=spec.params,
            capabilities=capabilities,
            client=client,
        )
    if spec.provider in HOSTED_API_DEFAULTS:
        from arena.providers.anthropic import AnthropicProvider
        from arena.providers.gemini import GeminiProvider

        adapter = AnthropicProvider if spec.provider == "anthropic" else GeminiProvider
        return adapter(
            base_url=spec.resolved_base_url or HOSTED_API_DEFAULTS[spec.provider],
            upstream_model=spec.upstream_name,
            api_key_env=spec.api_key_env,
            timeouts=timeouts,
            params=spec.params,
            capabilities=capabilities,
        )
    if spec.provider == "local":
        from arena.providers.local import LocalProvider

        assert spec.model_path is not None
        return LocalProvider(
            spec.model_path,
            name=spec.name,
            device=spec.device,
            max_concurrency=spec.max_concurrency,
            params=spec.params,
            capabilities=capabilities,
        )
    if spec.provider == "demo":
        from arena.providers.demo import DemoProvider

        params = dict(spec.params)
        style = params.pop("style", "mixed")
        tokens_per_s = float(params.pop("tokens_per_s", 30.0))
        try:
            return DemoProvider(
                spec.name,
                style=style,
                tokens_per_s=tokens_per_s,
                params=params,
                capabilities=capabilities | {"completions", "embeddings"},
            )
        except ValueError as e:
            raise RegistryError(f"model {spec.name!r}: {e}") from None
    raise RegistryError(f"model {spec.name!r}: no adapter for provider {spec.provider!r}")


# ---------------------------------------------------------------- the built-in default

DEMO_MODELS: tuple[tuple[str, str, list[str]], ...] = (
    ("demo-aurora", "mixed", ["text"]),
    ("demo-basalt", "plain", ["text"]),
    ("demo-cirrus", "lists", ["text"]),
    ("demo-delta", "bold", ["text", "vision"]),
)
OLLAMA_URL = "http://127.0.0.1:11434"


def demo_specs() -> list[ModelSpec]:
    from arena.providers.demo import DEMO_NOTICE

    return [
        ModelSpec(
            name=name,
            provider="demo",
            params={"style": style},
            capabilities=caps,  # type: ignore[arg-type]
            organization="Arena demo",
            license="Apache-2.0",
            description=DEMO_NOTICE,
        )
        for name, style, caps in DEMO_MODELS
    ]


def probe_ollama(url: str = OLLAMA_URL, *, timeout_s: float = 0.3) -> list[ModelSpec]:
    """Models of an Ollama server at ``url`` (``GET /api/tags``); [] when none answers."""
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/api/tags", timeout=timeout_s)
        response.raise_for_status()
        names = [m["name"] for m in response.json().get("models", []) if m.get("name")]
    except (httpx.HTTPError, ValueError, TypeError, KeyError, AttributeError):
        return []
    specs = []
    for name in names:
        try:
            specs.append(
                ModelSpec(
                    name=name,
                    provider="ollama",
                    base_url=f"{url.rstrip('/')}/v1",
                    organization="Ollama (local)",
                    description=f"Served by the Ollama server at {url}",
                )
            )
        except ValidationError:
            continue  # a name we cannot use as a public model name
    return specs


def default_registry(
    settings: Any = None, *, ollama_url: str | None = OLLAMA_URL, probe_timeout_s: float = 0.3
) -> RegistryFile:
    """The registry used when none is configured: small instruct models from the Hugging
    Face Hub run locally (``settings.default_hub_models``; needs the local extra, and each
    model cached or the Hub reachable), plus the models of a local Ollama server. With
    fewer than two of those (too few for a battle), the built-in demo models join them, so
    every flow can be tried offline.

    Pass ``ollama_url=None`` to skip the Ollama probe.
    """
    from arena.providers.hub_models import hub_specs

    repo_ids = list(getattr(settings, "default_hub_models", None) or [])
    specs = hub_specs(repo_ids)
    if ollama_url:
        taken = {s.name for s in specs}
        specs += [
            s for s in probe_ollama(ollama_url, timeout_s=probe_timeout_s) if s.name not in taken
        ]
    return RegistryFile(models=specs if len(specs) >= 2 else specs + demo_specs())


def registry_for(settings: Any) -> RegistryFile:
    """The configured registry file if there is one, else ``default_registry``."""
    path = settings.resolved_config_path() if settings is not None else None
    return load_registry(path) if path is not None else default_registry(settings)
