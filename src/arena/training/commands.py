"""``arena train sft|dpo|reward``: fine-tune a model on exported arena data.

Only typer is imported here; TRL, PEFT, accelerate and torch load when a command runs, so
``arena --help`` works without the ``train`` extra and ``arena train`` says how to get it.
Several GPUs or machines: ``accelerate launch -m arena.training sft ...`` (see
docs/training.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from arena.training.options import TrainOptions

MODEL = typer.Option(..., "--model", help="Directory of the model to start from.")
DATA = typer.Option(..., "--data", help="Training file (.jsonl, .json or .parquet).")
OUTPUT = typer.Option(..., "--output", help="Directory for the trained model and checkpoints.")
MAX_STEPS = typer.Option(None, "--max-steps", min=1, help="Stop after this many steps.")
EPOCHS = typer.Option(1.0, "--epochs", min=0.0, help="Passes over the data (without --max-steps).")
LR = typer.Option(None, "--learning-rate", min=0.0, help="Default depends on the run and --lora.")
BATCH = typer.Option(4, "--batch-size", min=1, help="Examples per device per step.")
ACCUM = typer.Option(1, "--gradient-accumulation", min=1, help="Batches per optimiser step.")
MAX_LEN = typer.Option(
    None, "--max-length", help="Tokens per example (default: the context, at most 1024)."
)
DROP_LONG = typer.Option(False, "--drop-long", help="Leave out examples longer than --max-length.")
LORA = typer.Option(False, "--lora", help="Train LoRA adapters (PEFT) instead of every weight.")
RANK = typer.Option(16, "--lora-rank", min=1, help="LoRA rank.")
ALPHA = typer.Option(32, "--lora-alpha", min=1, help="LoRA alpha.")
ADAPTER = typer.Option(
    False, "--adapter-only", help="Save the LoRA adapter alone instead of merging it."
)
RESUME = typer.Option(False, "--resume", help="Continue from the newest checkpoint in --output.")
SAVE_STEPS = typer.Option(200, "--save-steps", min=1, help="Write a checkpoint every N steps.")
SEED = typer.Option(0, "--seed", help="Random seed.")
CPU = typer.Option(False, "--cpu", help="Train on the CPU even when a GPU is present.")


def _run(options: TrainOptions, runner: Callable[[TrainOptions], dict[str, Any]]) -> None:
    from arena.training.data_files import DataLayoutError
    from arena.training.model_io import TrainingInputError

    if options.adapter_only and not options.lora:
        raise typer.BadParameter("--adapter-only needs --lora", param_hint="--adapter-only")
    if options.output.resolve() == options.model.resolve():
        raise typer.BadParameter("write into a new directory, not the model's", "--output")
    if options.output.exists() and not options.output.is_dir():
        raise typer.BadParameter(f"{options.output} is a file", param_hint="--output")
    trained = [n for n in ("config.json", "adapter_config.json") if (options.output / n).exists()]
    if trained and not options.resume:
        raise typer.BadParameter(
            f"{options.output} already holds a trained model; use a new directory",
            param_hint="--output",
        )
    try:
        summary = runner(options)
    except TrainingInputError as e:
        raise typer.BadParameter(str(e), param_hint=e.param) from None
    except DataLayoutError as e:
        raise typer.BadParameter(str(e), param_hint="--data") from None
    shown = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in summary.items()
        if k not in ("base_model", "data") and v is not None
    )
    typer.echo(f"saved to {options.output}: {shown}")
    if summary.get("held_out_accuracy") is not None:
        typer.echo(
            f"reward model accuracy on {summary['held_out_pairs']} held-out votes: "
            f"{summary['held_out_accuracy']:.3f}"
        )


def _runner(name: str) -> Callable[[TrainOptions], dict[str, Any]]:
    try:
        import peft  # noqa: F401
        import trl  # noqa: F401
    except ImportError as e:
        typer.secho(
            f"error: training needs the train extra (pip install 'arena[train]'): {e}",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=2) from None
    from arena.training import preference, sft

    return {"sft": sft.run_sft, "dpo": preference.run_dpo, "reward": preference.run_reward}[name]


def _options(kind: str, **values: Any) -> TrainOptions:
    return TrainOptions(kind=kind, **values)


def register(app: typer.Typer) -> None:
    """Mount ``arena train`` on the root app."""
    app.add_typer(build_train_app(), name="train")


def build_train_app() -> typer.Typer:
    """The ``sft``, ``dpo`` and ``reward`` commands as one Typer app."""
    train_app = typer.Typer(
        help="Fine-tune models on arena data (needs the train extra).",
        no_args_is_help=True,
        add_completion=False,
    )

    @train_app.command("sft")
    def sft(
        model: Path = MODEL,
        data: Path = DATA,
        output: Path = OUTPUT,
        max_steps: int | None = MAX_STEPS,
        epochs: float = EPOCHS,
        learning_rate: float | None = LR,
        batch_size: int = BATCH,
        gradient_accumulation: int = ACCUM,
        max_length: int | None = MAX_LEN,
        drop_long: bool = DROP_LONG,
        lora: bool = LORA,
        lora_rank: int = RANK,
        lora_alpha: int = ALPHA,
        adapter_only: bool = ADAPTER,
        resume: bool = RESUME,
        save_steps: int = SAVE_STEPS,
        seed: int = SEED,
        cpu: bool = CPU,
    ) -> None:
        """Supervised fine-tuning on conversations (`arena export sft`), loss on answers only."""
        _run(_options("sft", **locals()), _runner("sft"))

    @train_app.command("dpo")
    def dpo(
        model: Path = MODEL,
        data: Path = DATA,
        output: Path = OUTPUT,
        max_steps: int | None = MAX_STEPS,
        epochs: float = EPOCHS,
        learning_rate: float | None = LR,
        batch_size: int = BATCH,
        gradient_accumulation: int = ACCUM,
        max_length: int | None = MAX_LEN,
        drop_long: bool = DROP_LONG,
        lora: bool = LORA,
        lora_rank: int = RANK,
        lora_alpha: int = ALPHA,
        adapter_only: bool = ADAPTER,
        resume: bool = RESUME,
        save_steps: int = SAVE_STEPS,
        seed: int = SEED,
        cpu: bool = CPU,
        beta: float = typer.Option(0.1, "--beta", min=0.0, help="DPO's KL strength."),
    ) -> None:
        """Direct preference optimisation on votes (`arena export preferences`)."""
        _run(_options("dpo", **locals()), _runner("dpo"))

    @train_app.command("reward")
    def reward(
        model: Path = MODEL,
        data: Path = DATA,
        output: Path = OUTPUT,
        max_steps: int | None = MAX_STEPS,
        epochs: float = EPOCHS,
        learning_rate: float | None = LR,
        batch_size: int = BATCH,
        gradient_accumulation: int = ACCUM,
        max_length: int | None = MAX_LEN,
        drop_long: bool = DROP_LONG,
        lora: bool = LORA,
        lora_rank: int = RANK,
        lora_alpha: int = ALPHA,
        adapter_only: bool = ADAPTER,
        resume: bool = RESUME,
        save_steps: int = SAVE_STEPS,
        seed: int = SEED,
        cpu: bool = CPU,
        eval_fraction: float = typer.Option(
            0.1, "--eval-fraction", help="Share of votes held out to measure accuracy."
        ),
    ) -> None:
        """A reward model on votes; reports its accuracy on held-out votes."""
        _run(_options("reward", **locals()), _runner("reward"))

    return train_app
