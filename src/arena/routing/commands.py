"""CLI of arena.routing: ``arena route train | calibrate | eval``.

``--router`` is ``random`` or a trained router's directory. Bad input ends with a red
message and exit code 2, never a traceback. Heavy imports stay inside the command bodies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

route_app = typer.Typer(
    name="route",
    help="Preference-trained routers: train, calibrate and evaluate (docs/routing.md).",
    no_args_is_help=True,
)

ROUTER_HELP = "'random' or a trained router's directory (from 'arena route train')."
EMBED_HELP = "Embed prompts with this /v1/embeddings model of the registry (default: TF-IDF)."


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(route_app, name="route")


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _embedder(model: str, config: Path | None, cache: Path | None) -> Any:
    from arena.judge.cli_support import load_specs
    from arena.providers.registry import RegistryError, build_provider
    from arena.routing.featurizers import EmbeddingFeaturizer

    specs, settings = load_specs([model], config)
    try:
        provider = build_provider(specs[model], settings)
    except RegistryError as e:
        raise _fail(str(e)) from None
    cache = cache or settings.data_dir / "embedding-cache"
    # the public name: the one a saved router is looked up by again
    return EmbeddingFeaturizer(provider, model, cache_dir=cache)


def _load_router(spec: str, embed_model: str | None, config: Path | None, cache: Path | None):
    from arena.routing.persistence import load_router, read_meta
    from arena.routing.router import RandomRouter

    if spec == "random":
        return RandomRouter()
    if not Path(spec).is_dir():
        if spec in ("sw-ranking", "mf", "classifier"):
            raise _fail(
                f"--router {spec!r} needs training first: arena route train --router {spec} "
                "--from SOURCE --out DIR, then pass DIR"
            )
        raise _fail(f"--router {spec!r}: neither 'random' nor a trained router's directory")
    saved = (read_meta(spec).get("featurizer") or {}).get("model")
    if not (saved or embed_model):
        return load_router(spec)
    embedder = _embedder(embed_model or saved, config, cache)
    cache_dir = embedder.cache.parent if embedder.cache is not None else None
    return load_router(spec, embed_provider=embedder.provider, cache_dir=cache_dir)


def _close(featurizer: Any) -> None:
    """Close an embeddings featuriser's provider and loop (TF-IDF has nothing to close)."""
    if featurizer is not None and hasattr(featurizer, "close"):
        featurizer.close()


def _emit(payload: dict[str, Any], as_json: bool, table: Any) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console

    Console().print(table)


def _pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f}%"


@route_app.command("train")
def train_command(
    router: str = typer.Option(..., "--router", "-r", help="random, sw-ranking, mf or classifier."),
    source: str = typer.Option(
        ..., "--from", help="store, a database URL, judge:FILES, routellm:DIR or a battle file."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the router to."),
    strong: str | None = typer.Option(None, help="Strong model (default: best rated)."),
    weak: str | None = typer.Option(None, help="Weak model (default: worst rated)."),
    benchmark: str | None = typer.Option(None, help="For routellm:DIR: mmlu, gsm8k or mt-bench."),
    questions: str | None = typer.Option(None, help="Question JSONL (judge: and MT-Bench)."),
    baseline: str | None = typer.Option(None, help="Arena-Hard baseline for judge: files."),
    holdout: float = typer.Option(
        0.0, min=0.0, max=0.95, help="Share of prompts held out (by prompt), not trained on."
    ),
    seed: int = typer.Option(0, help="Seed of the held-out split and of training."),
    sharpness: float = typer.Option(10.0, help="sw-ranking: similarity sharpness."),
    rank: int = typer.Option(16, min=1, help="mf: dimension of the factors."),
    l2: float | None = typer.Option(None, min=0.0, help="mf/classifier: L2 penalty."),
    embed_model: str | None = typer.Option(None, "--embed-model", help=EMBED_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="Model registry YAML."),
    embed_cache: Path | None = typer.Option(None, help="Embedding cache directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train a router on battles with prompts and save it to --out."""
    from rich.table import Table

    from arena.errors import ArenaError
    from arena.routing.data import split_by_prompt
    from arena.routing.evaluate_command import busy
    from arena.routing.persistence import save_router
    from arena.routing.sources import load_source
    from arena.routing.training import ROUTERS, train_router

    if router not in ROUTERS:
        raise _fail(f"--router must be one of {', '.join(ROUTERS)}, not {router!r}")
    params: dict[str, Any] = {}
    if router == "sw-ranking":
        params["sharpness"] = sharpness
    if router == "mf":
        params["rank"] = rank
    if router in ("mf", "classifier") and l2 is not None:
        params["l2"] = l2
    try:
        data = load_source(source, questions=questions, benchmark=benchmark, baseline=baseline)
        held = 0
        if holdout > 0:
            test = split_by_prompt(data.prompts, test_fraction=holdout, seed=seed)
            held = len(set(p for p, t in zip(data.prompts, test, strict=True) if t))
            data = data.subset(~test)
        featurizer = _embedder(embed_model, config, embed_cache) if embed_model else None
        try:
            with busy(f"training {router} on {len(data)} battles"):
                trained = train_router(
                    router,
                    data,
                    featurizer=featurizer,
                    strong=strong,
                    weak=weak,
                    seed=seed,
                    **params,
                )
            info = {"source": source, "benchmark": benchmark, "holdout": holdout, "seed": seed}
            save_router(trained, out, training_prompts=data.prompts, info=info)
        finally:
            _close(featurizer)
    except ArenaError as e:
        raise _fail(e.message) from None
    summary = {
        "router": router,
        "out": str(out),
        "battles": len(data),
        "prompts": len(set(data.prompts)),
        "held_out_prompts": held,
        "models": list(trained.models),
        "strong": trained.strong,
        "weak": trained.weak,
    }
    table = Table(title=f"trained {router} router → {out}")
    table.add_column("field")
    table.add_column("value")
    for key, value in summary.items():
        table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    _emit(summary, as_json, table)


@route_app.command("calibrate")
def calibrate_command(
    router: str = typer.Option(..., "--router", "-r", help=ROUTER_HELP),
    strong_share: float = typer.Option(
        ..., min=0.0, max=1.0, help="Share of prompts to send to the strong model."
    ),
    data: str | None = typer.Option(
        None, help="Prompt sample: JSONL, battle file or RouteLLM folder (default: training)."
    ),
    benchmark: str | None = typer.Option(None, help="With a RouteLLM folder: which benchmark."),
    embed_model: str | None = typer.Option(None, "--embed-model", help=EMBED_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="Model registry YAML."),
    embed_cache: Path | None = typer.Option(None, help="Embedding cache directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """The threshold that sends --strong-share of a prompt sample to the strong model."""
    import numpy as np
    from rich.table import Table

    from arena.errors import ArenaError
    from arena.routing.evaluation import calibrate_threshold
    from arena.routing.persistence import training_prompts
    from arena.routing.sources import load_prompts

    try:
        routed = _load_router(router, embed_model, config, embed_cache)
        if data is not None:
            prompts = load_prompts(data, benchmark=benchmark)
        elif router != "random":
            prompts = training_prompts(router)
        else:
            prompts = []
        if not prompts:
            raise _fail("no prompts to calibrate on: give --data (a prompt or battle file)")
        try:
            scores = routed.strong_win_rate(prompts)
        finally:
            _close(routed.featurizer)
        threshold = calibrate_threshold(scores, strong_share)
    except ArenaError as e:
        raise _fail(e.message) from None
    achieved = float(np.mean(scores >= threshold))
    payload = {
        "router": router,
        "threshold": threshold,
        "target_strong_share": strong_share,
        "strong_share": achieved,
        "prompts": len(prompts),
    }
    table = Table(title=f"calibration of {router}")
    for col in ("threshold", "target share", "achieved share", "prompts"):
        table.add_column(col, justify="right")
    table.add_row(f"{threshold:.5f}", _pct(strong_share), _pct(achieved), str(len(prompts)))
    _emit(payload, as_json, table)


@route_app.command("eval")
def eval_command(
    routers: list[str] = typer.Option(..., "--router", "-r", help=ROUTER_HELP + " Repeatable."),
    benchmark: str = typer.Option(..., "--benchmark", "-b", help="mmlu, gsm8k or mt-bench."),
    data: Path = typer.Option(..., "--data", help="RouteLLM evaluation folder."),
    questions: str | None = typer.Option(None, help="MT-Bench question JSONL (optional)."),
    strong: str | None = typer.Option(None, help="Strong model's column (default: GPT-4)."),
    weak: str | None = typer.Option(None, help="Weak model's column (default: Mixtral)."),
    plot: Path | None = typer.Option(None, help="Write the quality/strong-share plot (PNG)."),
    embed_model: str | None = typer.Option(None, "--embed-model", help=EMBED_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="Model registry YAML."),
    embed_cache: Path | None = typer.Option(None, help="Embedding cache directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """APGR and CPT(50%)/CPT(80%) of routers against random, on prompts none was trained on."""
    from arena.errors import ArenaError
    from arena.routing.benchmarks import STRONG, WEAK, load_benchmark
    from arena.routing.evaluate_command import evaluate_routers, results_table

    names = list(dict.fromkeys(routers))
    if "random" not in names:
        names.append("random")
    try:
        table = load_benchmark(
            data, benchmark, questions=questions, strong=strong or STRONG, weak=weak or WEAK
        )
        loaded = {n: _load_router(n, embed_model, config, embed_cache) for n in names}
        try:
            payload, curves = evaluate_routers(table, loaded)
        finally:
            for routed in loaded.values():
                _close(routed.featurizer)
        if plot is not None:
            from arena.routing.evaluation import plot_curves

            plot_curves(
                curves,
                plot,
                title=f"{benchmark}: quality vs strong-model calls",
                strong=table.strong,
                weak=table.weak,
            )
            payload["plot"] = str(plot)
    except ArenaError as e:
        raise _fail(e.message) from None
    _emit(payload, as_json, results_table(payload))
