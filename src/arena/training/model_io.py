"""Loading the model to train, checking what it is given, and saving what was trained.

Bad input is a ``TrainingInputError`` (the CLI's exit code 2): a path that is not a model, a
tokenizer without a chat template, a ``--max-length`` beyond the model's context, examples
longer than it. The output directory is what ``arena worker --model DIR`` loads: the model
(LoRA merged into it by default) with its tokenizer, or, with ``adapter_only``, the adapter
with the tokenizer (the worker loads it on its base, named in ``adapter_config.json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from arena.training.options import TrainOptions

DEFAULT_MAX_LENGTH = 1024
SUMMARY_NAME = "arena_training.json"


class TrainingInputError(ValueError):
    """The model, data or lengths given cannot be trained; says which and why."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def load_config(path: Path) -> Any:
    from transformers import AutoConfig

    if not path.is_dir():
        raise TrainingInputError(f"{path} is not a directory holding a model", "--model")
    if not (path / "config.json").is_file():
        raise TrainingInputError(
            f"{path} is not a model directory (no config.json; a Hugging Face model saved "
            "with save_pretrained is expected)",
            "--model",
        )
    try:
        return AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as e:
        raise TrainingInputError(
            f"cannot read the model config in {path}: {e}", "--model"
        ) from None


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, TypeError) as e:
        raise TrainingInputError(f"cannot load a tokenizer from {path}: {e}", "--model") from None
    if not getattr(tokenizer, "chat_template", None):
        raise TrainingInputError(
            f"the tokenizer in {path} has no chat template; training on conversations needs "
            "one (set tokenizer.chat_template and save it)",
            "--model",
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def context_length(config: Any) -> int | None:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(text, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def max_length_for(options: TrainOptions, config: Any) -> int:
    """The sequence length to train at: ``--max-length``, else the context (at most 1024)."""
    context = context_length(config)
    if options.max_length is not None:
        if options.max_length < 8:
            raise TrainingInputError("--max-length must be at least 8 tokens", "--max-length")
        if context is not None and options.max_length > context:
            raise TrainingInputError(
                f"--max-length {options.max_length} does not fit the model's context of "
                f"{context} tokens",
                "--max-length",
            )
        return options.max_length
    return min(context or DEFAULT_MAX_LENGTH, DEFAULT_MAX_LENGTH)


def keep_fitting(
    examples: Sequence[Any],
    lengths: Callable[[Any], int],
    max_length: int,
    drop_long: bool,
) -> list[Any]:
    """The examples that fit ``max_length`` tokens; any that do not is an error unless
    ``drop_long`` (truncating a conversation would train on a cut answer)."""
    sizes = [lengths(example) for example in examples]
    kept = [e for e, n in zip(examples, sizes, strict=True) if n <= max_length]
    too_long = len(examples) - len(kept)
    if too_long and (not drop_long or not kept):
        raise TrainingInputError(
            f"{too_long} of {len(examples)} examples are longer than {max_length} tokens "
            f"(longest {max(sizes)}); raise --max-length (up to the model's context) or pass "
            "--drop-long to leave them out",
            "--max-length",
        )
    return kept


def chat_tokens(tokenizer: Any) -> Callable[[list[dict[str, str]]], int]:
    def count(messages: list[dict[str, str]]) -> int:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


def lora_config(options: TrainOptions, task_type: str) -> Any:
    if not options.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        task_type=task_type,
        r=options.lora_rank,
        lora_alpha=options.lora_alpha,
        lora_dropout=0.05,
        target_modules="all-linear",
    )


def trainer_arguments(options: TrainOptions, max_length: int) -> dict[str, Any]:
    """Settings every TRL config here shares."""
    import torch

    on_gpu = torch.cuda.is_available() and not options.cpu
    steps = options.max_steps if options.max_steps is not None else -1
    return {
        "output_dir": str(options.checkpoints),
        "max_steps": steps,
        "num_train_epochs": options.epochs,
        "learning_rate": options.lr,
        "per_device_train_batch_size": options.batch_size,
        "per_device_eval_batch_size": options.batch_size,
        "gradient_accumulation_steps": options.gradient_accumulation,
        "max_length": max_length,
        "logging_steps": max(1, min(10, steps // 10)) if steps > 0 else 10,
        "save_strategy": "steps",
        "save_steps": options.save_steps,
        "save_total_limit": 2,
        "seed": options.seed,
        "report_to": "none",
        "use_cpu": not on_gpu,
        "bf16": on_gpu and torch.cuda.is_bf16_supported(),
        "dataloader_pin_memory": on_gpu,
    }


def resume_point(options: TrainOptions) -> str | None:
    if not options.resume:
        return None
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(options.checkpoints)) if options.checkpoints.is_dir() else None
    if last is None:
        raise TrainingInputError(
            f"--resume: no checkpoint under {options.checkpoints} to resume from", "--resume"
        )
    return last


def save_trained(trainer: Any, tokenizer: Any, options: TrainOptions, summary: dict) -> None:
    """Write the trained model (LoRA merged unless ``adapter_only``), its tokenizer and a
    summary of the run into the output directory (main process only)."""
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    if options.lora and not options.adapter_only:
        model = model.merge_and_unload()
    options.output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(options.output)
    tokenizer.save_pretrained(options.output)
    (options.output / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
