"""Supervised fine-tuning on conversations with TRL's ``SFTTrainer``.

The loss falls on the assistant's words only. When the tokenizer's chat template has TRL's
``{% generation %}`` markers, or is one TRL knows how to patch, TRL's assistant-only loss
masks every other token. Otherwise each conversation becomes one prompt/completion example
per assistant turn (the conversation before it, then that answer) and TRL's completion-only
loss applies: the same tokens learned, whatever the template.
"""

from __future__ import annotations

from typing import Any

from arena.training.data_files import per_turn_examples, sft_conversations
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


def assistant_masking(tokenizer: Any) -> str:
    """``assistant_only`` when TRL can mask by the template, else ``per_turn``."""
    from trl.chat_template_utils import get_training_chat_template

    try:
        get_training_chat_template(tokenizer)
    except ValueError:
        return "per_turn"
    return "assistant_only"


def load_causal_lm(options: TrainOptions) -> Any:
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(options.model.resolve())
    except (OSError, ValueError) as e:
        raise TrainingInputError(
            f"cannot load a causal language model from {options.model}: {e}", "--model"
        ) from None


def run_sft(options: TrainOptions) -> dict[str, Any]:
    """Train, save into ``options.output``, return the run's summary."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    conversations = sft_conversations(options.data)
    config = load_config(options.model)
    tokenizer = load_tokenizer(options.model)
    max_length = max_length_for(options, config)
    conversations = keep_fitting(
        conversations, chat_tokens(tokenizer), max_length, options.drop_long
    )
    masking = assistant_masking(tokenizer)
    if masking == "assistant_only":
        rows = [{"messages": messages} for messages in conversations]
    else:
        rows = [example for messages in conversations for example in per_turn_examples(messages)]
    if not rows:
        raise TrainingInputError("no assistant answer follows a prompt in the data", "--data")
    args = SFTConfig(
        **trainer_arguments(options, max_length),
        assistant_only_loss=masking == "assistant_only",
        completion_only_loss=True if masking == "per_turn" else None,
    )
    trainer = SFTTrainer(
        model=load_causal_lm(options),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=lora_config(options, "CAUSAL_LM"),
    )
    result = trainer.train(resume_from_checkpoint=resume_point(options))
    summary = {
        "kind": "sft",
        "base_model": str(options.model.resolve()),
        "data": str(options.data),
        "conversations": len(conversations),
        "examples": len(rows),
        "loss_on": masking,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "lora": options.lora,
        "adapter_only": options.adapter_only,
    }
    save_trained(trainer, tokenizer, options, summary)
    return summary
