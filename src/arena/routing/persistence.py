"""Trained routers on disk: ``router.json`` (kind, models, pair, parameters, featuriser) and
``arrays.npz`` (numbers only, loaded with ``allow_pickle=False``), plus ``prompts.jsonl``, the
distinct training prompts (a default calibration sample, and how evaluation keeps training
prompts out of a held-out measurement). Nothing is unpickled, so a router directory from
elsewhere cannot run code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from arena.ratings.battles import Battles
from arena.routing.classifier import ClassifierRouter
from arena.routing.errors import RoutingError
from arena.routing.factorization import FactorizationRouter
from arena.routing.featurizers import featurizer_from_saved
from arena.routing.router import RandomRouter, Router
from arena.routing.similarity import SimilarityRouter
from arena.routing.training_data import EncodedBattles

FORMAT = "arena-router"
VERSION = 1
_SCORE_OF_OUTCOME = np.array([1.0, 0.0, 0.5, 0.5])


def save_router(
    router: Router,
    directory: str | Path,
    *,
    training_prompts: Sequence[str] = (),
    info: dict[str, Any] | None = None,
) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    featurizer = router.featurizer
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "kind": router.kind,
        "models": list(router.models),
        "strong": router.strong,
        "weak": router.weak,
        "params": router.params(),
        "featurizer": featurizer.config() if featurizer is not None else None,
        "info": info or {},
    }
    arrays = dict(router.arrays())
    if featurizer is not None:
        arrays |= featurizer.arrays()
    np.savez_compressed(directory / "arrays.npz", **arrays)
    with (directory / "prompts.jsonl").open("w", encoding="utf-8") as f:
        for prompt in dict.fromkeys(training_prompts):
            f.write(json.dumps(prompt, ensure_ascii=False) + "\n")
    (directory / "router.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return directory


def read_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / "router.json"
    if not path.is_file():
        raise RoutingError(f"{directory}: no router.json (train one with 'arena route train')")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise RoutingError(f"{path}: not JSON ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise RoutingError(f"{path}: not an arena router of version {VERSION}")
    return meta


def training_prompts(directory: str | Path) -> list[str]:
    path = Path(directory) / "prompts.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def load_router(
    directory: str | Path, *, embed_provider: Any = None, cache_dir: str | Path | None = None
) -> Router:
    """The router saved in ``directory`` (an embeddings featuriser needs its provider)."""
    meta = read_meta(directory)
    try:
        with np.load(Path(directory) / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as e:
        raise RoutingError(f"{directory}: unreadable arrays.npz ({e})") from None
    kind, models = meta["kind"], tuple(meta["models"])
    strong, weak, params = meta["strong"], meta["weak"], meta.get("params", {})
    if kind == "random":
        return RandomRouter(models, strong, weak, seed=int(params.get("seed", 0)))
    featurizer = featurizer_from_saved(
        meta["featurizer"] or {}, arrays, embed_provider=embed_provider, cache_dir=cache_dir
    )
    if kind == "mf":
        return FactorizationRouter(
            models,
            featurizer,
            strong,
            weak,
            arrays["mf_w"],
            arrays["mf_b"],
            arrays["mf_v"],
            arrays["mf_c"],
            rank=int(params["rank"]),
            l2=float(params["l2"]),
        )
    if kind == "classifier":
        return ClassifierRouter(
            models,
            featurizer,
            strong,
            weak,
            arrays["classifier_coef"],
            float(params["intercept"]),
            l2=float(params["l2"]),
        )
    if kind == "sw-ranking":
        outcome = arrays["battle_outcome"].astype(np.int8)
        weights = arrays["battle_weight"].astype(float)
        battles = Battles(
            models=models,
            model_a=arrays["battle_a"].astype(np.int32),
            model_b=arrays["battle_b"].astype(np.int32),
            outcome=outcome,
            weights=weights,
        )
        encoded = EncodedBattles(
            models,
            arrays["battle_a"],
            arrays["battle_b"],
            _SCORE_OF_OUTCOME[outcome],
            weights,
            battles,
        )
        return SimilarityRouter(
            encoded,
            SimilarityRouter.features_from(arrays),
            featurizer,
            strong,
            weak,
            sharpness=float(params.get("sharpness", 10.0)),
        )
    raise RoutingError(f"{directory}: unknown router kind {kind!r}")
