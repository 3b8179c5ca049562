"""The model registry file (YAML): which models exist, how to reach them, how the arena uses them.

Validated once at start; every bad field is reported with its path so a user can fix the
file in one go. ``build_providers`` turns the validated specs into ``Provider`` objects.

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
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _provider_needs(self) -> ModelSpec:
        if self.provider == "local" and not self.model_path:
            raise ValueError("provider 'local' needs model_path (a directory or hub id)")
        if self.provider == "openai_compatible" and not self.base_url:
            raise ValueError("provider 'openai_compatible' needs base_url")
        return self

    @property
    def upstream_name(self) -> str:
        return self.upstream_model or self.name

    @property
    def resolved_base_url(self) -> str | None:
        if self.base_url:
            return self.base_url
        return OPENAI_COMPATIBLE_DEFAULTS.get(self.provider)

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


def _describe(error: ValidationError, doc: Any) -> str:
    lines = []
    for e in error.errors():
        loc = list(e["loc"])
        where = ".".join(str(p) for p in loc) or "(file)"
        # Name the model, not just its index, when we can.
        if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
            try:
                name = doc["models"][loc[1]].get("name")
            except (KeyError, IndexError, TypeError, AttributeError):
                name = None
            if name:
                where = f"models[{loc[1]}] ({name})" + "".join(f".{p}" for p in loc[2:])
        lines.append(f"  - {where}: {e['msg']}")
    return "\n".join(lines)


def parse_registry(doc: Any, source: str = "<registry>") -> RegistryFile:
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise RegistryError(f"{source}: the top level must be a mapping with a 'models' list")
    try:
        return RegistryFile.model_validate(doc)
    except ValidationError as e:
        raise RegistryError(f"{source} is invalid:\n{_describe(e, doc)}") from None


def load_registry(path: str | Path) -> RegistryFile:
    """Read and validate a registry YAML file, raising ``RegistryError`` with every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RegistryError(f"cannot read model registry {path}: {e.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RegistryError(f"{path} is not valid YAML: {e}") from None
    return parse_registry(doc, str(path))
