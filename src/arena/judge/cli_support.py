"""What every ``arena judge`` command needs: failing with a message, running a coroutine, and
finding the models it names.

Models come from the registry file (``--config``, ``ARENA_CONFIG_PATH`` or ``./arena.yaml``)
or, when there is none, from the same default registry ``arena serve`` uses (local Hub
models, a local Ollama, else the built-in demo models), so the commands run offline with no
configuration at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import typer

T = TypeVar("T")

REGISTRY_HELP = "Model registry YAML (default: ./arena.yaml, else the default models)."


def fail(message: str) -> typer.Exit:
    """Print ``message`` in red on stderr; the caller raises the returned exit (code 2)."""
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop when installed (lower per-call overhead), else asyncio."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(make())


def load_registry_specs(config: Path | None) -> tuple[dict[str, Any], Any, Path | None]:
    """Model specs by name, the settings, and the registry file (None: the default one)."""
    from arena.config import Settings
    from arena.providers.registry import RegistryError, default_registry, load_registry

    settings = Settings()
    path = config or settings.resolved_config_path()
    if path is None:
        registry = default_registry(settings)
    else:
        try:
            registry = load_registry(path)
        except RegistryError as e:
            raise fail(f"{e}\nfix the registry file (see docs/judge.md for an example)") from None
    return {s.name: s for s in registry.models}, settings, path


def load_specs(names: Sequence[str], config: Path | None) -> tuple[dict[str, Any], Any]:
    """Specs for ``names``; an unknown name fails with the names the registry does have, a
    model only workers serve with how to reach it through the gateway."""
    specs, settings, path = load_registry_specs(config)
    unknown = [n for n in dict.fromkeys(names) if n not in specs]
    if unknown:
        if path is None:
            where = "the default registry (no --config given and no ./arena.yaml here)"
            hint = "Name one of those, or list your models in a registry file and pass --config"
        else:
            where, hint = str(path), f"Name one of those, or add the model(s) to {path}"
        raise fail(
            f"model(s) not in {where}: {', '.join(unknown)}; it has "
            f"{', '.join(sorted(specs)) or 'no models'}. {hint} (see docs/judge.md)"
        )
    served_by_workers = [n for n in dict.fromkeys(names) if specs[n].provider == "workers"]
    if served_by_workers:
        raise fail(
            f"model(s) {', '.join(served_by_workers)} are served by registered workers "
            "(provider: workers), which only a running gateway reaches; add a registry entry "
            "that calls the gateway instead (provider: openai_compatible, base_url: "
            "http://HOST:8000/v1, upstream_model: NAME; see docs/judge.md)"
        )
    return specs, settings


def build_providers(names: Sequence[str], config: Path | None, *, clients: int = 1) -> Any:
    """Providers for the named models, OpenAI-compatible ones on shared HTTP client(s);
    close them with ``await providers.aclose()``."""
    from arena.errors import ArenaError
    from arena.judge.clients import build_provider_set
    from arena.providers.registry import RegistryError

    specs, settings = load_specs(names, config)
    try:
        return build_provider_set(specs, list(names), settings, clients=max(1, clients))
    except RegistryError as e:
        raise fail(str(e)) from None
    except ArenaError as e:
        raise fail(e.message) from None
    except ImportError as e:
        raise fail(
            f"a model needs a package that is not installed ({e.name or e}); for provider "
            "local: pip install -e '.[local]'"
        ) from None


def parse_pairs(values: Sequence[str], what: str) -> dict[str, float]:
    out = {}
    for value in values:
        key, sep, number = value.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(number)
        except ValueError:
            raise fail(f"{what} must look like NAME=NUMBER, got {value!r}") from None
    return out


def load_mapping(path: Path) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise fail(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict):
        raise fail(f"{path} must hold a mapping (YAML or JSON object)")
    return doc
