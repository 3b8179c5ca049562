"""The small instruct models of the embedded default registry, from the Hugging Face Hub.

``arena serve`` with no registry file offers them, run by the local transformers provider,
when the ``local`` extra is installed and each model is either already in the local Hub
cache (works offline) or the Hub answers for it now. The first probe round of the arena's
health monitor downloads and loads them in the background; until then they get no battles.

The Hub address is ``HF_ENDPOINT`` (default https://huggingface.co); ``HF_HUB_OFFLINE=1``
skips the network and keeps only cached models. The cache is ``HF_HUB_CACHE``, else
``HF_HOME/hub``, else ``~/.cache/huggingface/hub``: the places the Hub library uses.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path

import httpx

from arena.providers.registry import ModelSpec

log = logging.getLogger("arena.providers.hub")

_TRUE = {"1", "true", "yes", "on"}


def local_extra_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(home) / "hub"


def is_cached(repo_id: str, cache_dir: Path | None = None) -> bool:
    """The model's config and weights are in the local cache (a snapshot folder)."""
    folder = (cache_dir or hub_cache_dir()) / ("models--" + repo_id.replace("/", "--"))
    for snapshot in (folder / "snapshots").glob("*"):
        has_weights = any(snapshot.glob("*.safetensors")) or any(snapshot.glob("*.bin"))
        if (snapshot / "config.json").exists() and has_weights:
            return True
    return False


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def hub_model_info(repo_id: str, *, timeout_s: float) -> dict | None:
    """The Hub's answer for ``repo_id`` (``GET /api/models/{id}``), or None when it does
    not answer in time, or answers anything but a model."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    headers = {}
    token = os.environ.get("HF_TOKEN")
    if token:
        headers["authorization"] = f"Bearer {token}"
    try:
        response = httpx.get(f"{endpoint}/api/models/{repo_id}", headers=headers, timeout=timeout_s)
        doc = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("id") else None


def public_name(repo_id: str) -> str:
    """``Qwen/Qwen2.5-0.5B-Instruct`` -> ``qwen2.5-0.5b-instruct``."""
    return re.sub(r"[^a-z0-9.\-]+", "-", repo_id.rsplit("/", 1)[-1].lower()).strip("-")


def hub_specs(repo_ids: tuple[str, ...] | list[str], *, timeout_s: float = 1.5) -> list[ModelSpec]:
    """Registry entries for the models of ``repo_ids`` that can run here now."""
    if not repo_ids or not local_extra_installed():
        return []
    offline = hub_offline()
    specs = []
    for repo_id in repo_ids:
        cached = is_cached(repo_id)
        info = None if offline else hub_model_info(repo_id, timeout_s=timeout_s)
        if not cached and info is None:
            log.info("default model %s: not cached and the Hub does not answer; left out", repo_id)
            continue
        log.warning(
            "default registry: %s, run locally%s",
            repo_id,
            "" if cached else " (downloading from the Hub; battles start once it has loaded)",
        )
        card = (info or {}).get("cardData") or {}
        license_ = card.get("license") if isinstance(card.get("license"), str) else ""
        owner = repo_id.split("/", 1)[0] if "/" in repo_id else ""
        specs.append(
            ModelSpec(
                name=public_name(repo_id),
                provider="local",
                model_path=repo_id,
                organization=owner,
                license=license_,
                link=f"https://huggingface.co/{repo_id}",
                description=f"{repo_id}, run locally on this machine"
                + ("" if cached else " (downloaded from the Hub at first start)"),
                aliases=[repo_id, repo_id.rsplit("/", 1)[-1]],
                max_concurrency=2,
            )
        )
    return specs
