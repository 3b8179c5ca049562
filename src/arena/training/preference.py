"""Training on the arena's votes: direct preference optimisation (TRL's ``DPOTrainer``) and a
reward model (TRL's ``RewardTrainer``, a sequence classifier with one output).

The reward model keeps a share of the votes (``eval_fraction``, at least one) out of
training and reports its accuracy on them: how often it scores the chosen answer above the
rejected one.
"""

from __future__ import annotations

import random
from typing import Any

from arena.training.data_files import preference_pairs
from arena.training.model_io import (
    TrainingInputError,
    chat_tokens,
    keep_fitting,
    load_config,
    load_tokenizer,
    lora_config,
    max_length_for,
    resume_point,
    save_trained,
    trainer_arguments,
)
from arena.training.options import TrainOptions
from arena.training.sft import load_causal_lm


def _pair_tokens(tokenizer: Any) -> Any:
    count = chat_tokens(tokenizer)

    def longest(pair: dict[str, Any]) -> int:
        if isinstance(pair["prompt"], str):  # plain-text pairs: no template to apply
            ids = tokenizer(pair["prompt"] + max(pair["chosen"], pair["rejected"], key=len))
            return len(ids["input_ids"])
        return max(count(pair["prompt"] + pair[side]) for side in ("chosen", "rejected"))

    return longest


def _prepared(options: TrainOptions) -> tuple[list[dict], int, Any, int]:
    pairs, ties = preference_pairs(options.data)
    config = load_config(options.model)
    tokenizer = load_tokenizer(options.model)
    max_length = max_length_for(options, config)
    pairs = keep_fitting(pairs, _pair_tokens(tokenizer), max_length, options.drop_long)
    return pairs, ties, tokenizer, max_length


def run_dpo(options: TrainOptions) -> dict[str, Any]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    pairs, ties, tokenizer, max_length = _prepared(options)
    args = DPOConfig(**trainer_arguments(options, max_length), beta=options.beta)
    trainer = DPOTrainer(
        model=load_causal_lm(options),
        args=args,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=lora_config(options, "CAUSAL_LM"),
    )
    result = trainer.train(resume_from_checkpoint=resume_point(options))
    margins = [h["rewards/margins"] for h in trainer.state.log_history if "rewards/margins" in h]
    summary = {
        "kind": "dpo",
        "base_model": str(options.model.resolve()),
        "data": str(options.data),
        "pairs": len(pairs),
        "ties_skipped": ties,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "last_reward_margin": margins[-1] if margins else None,
        "lora": options.lora,
        "adapter_only": options.adapter_only,
    }
    save_trained(trainer, tokenizer, options, summary)
    return summary


def split_held_out(pairs: list[dict], fraction: float, seed: int) -> tuple[list, list]:
    """``(train, held_out)``: a seeded shuffle, at least one pair on each side."""
    if len(pairs) < 2:
        raise TrainingInputError(
            "a reward model needs at least two preference pairs (one is held out)", "--data"
        )
    if not 0 < fraction < 1:
        raise TrainingInputError("--eval-fraction must be between 0 and 1", "--eval-fraction")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    held = max(1, min(len(pairs) - 1, round(len(pairs) * fraction)))
    return [pairs[i] for i in order[held:]], [pairs[i] for i in order[:held]]


def run_reward(options: TrainOptions) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    pairs, ties, tokenizer, max_length = _prepared(options)
    train, held_out = split_held_out(pairs, options.eval_fraction, options.seed)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            options.model.resolve(), num_labels=1
        )
    except (OSError, ValueError) as e:
        raise TrainingInputError(
            f"cannot load {options.model} as a reward model (sequence classifier): {e}", "--model"
        ) from None
    model.config.pad_token_id = tokenizer.pad_token_id
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(**trainer_arguments(options, max_length)),
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(held_out),
        processing_class=tokenizer,
        peft_config=lora_config(options, "SEQ_CLS"),
    )
    result = trainer.train(resume_from_checkpoint=resume_point(options))
    metrics = trainer.evaluate()
    summary = {
        "kind": "reward",
        "base_model": str(options.model.resolve()),
        "data": str(options.data),
        "pairs": len(train),
        "held_out_pairs": len(held_out),
        "ties_skipped": ties,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "held_out_accuracy": metrics.get("eval_accuracy"),
        "lora": options.lora,
        "adapter_only": options.adapter_only,
    }
    save_trained(trainer, tokenizer, options, summary)
    return summary
