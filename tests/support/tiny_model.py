"""Build a tiny causal language model on disk, the way a real one is laid out.

No model hub is reachable, so tests make their own: a byte-level BPE tokenizer trained here
on a few hundred generated sentences, a 2-layer Llama with hidden size 48 and a context of
256 positions (small enough that the context-length check is easy to hit), random weights
from a fixed seed, and a chat template. ``save_pretrained`` writes both, so the real
``AutoTokenizer``/``AutoModelForCausalLM`` loading path is what the tests exercise.

    path = build_tiny_model(tmp_dir)   # returns tmp_dir / "tiny-llama"
"""

from __future__ import annotations

import itertools
from pathlib import Path

CONTEXT_LENGTH = 256
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]


def training_sentences() -> list[str]:
    subjects = [
        "the cat",
        "a student",
        "my neighbor",
        "the old sailor",
        "our teacher",
        "a small robot",
    ]
    verbs = ["reads", "paints", "finds", "carries", "explains", "repairs"]
    objects = ["a red book", "the river map", "seven letters", "a warm loaf", "the broken clock"]
    places = ["in the garden", "near the bridge", "after lunch", "before sunrise", "at the market"]
    sentences = [
        f"{s.capitalize()} {v} {o} {p}."
        for s, v, o, p in itertools.product(subjects, verbs, objects, places)
    ]
    sentences += [
        "What is the capital of France? Paris is the capital.",
        "Write a short poem about the sea and the wind.",
        "Explain how rain forms in clouds, step by step.",
        "1. First item\n2. Second item\n- a bullet with **bold** text",
    ]
    return sentences[:900]


def build_tiny_model(directory: str | Path, *, seed: int = 0) -> Path:
    """Write tokenizer + config + random weights under ``directory/tiny-llama``; return it.
    Reuses an existing build in the same directory."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(directory) / "tiny-llama"
    if (path / "config.json").exists() and (path / "tokenizer.json").exists():
        return path
    path.mkdir(parents=True, exist_ok=True)

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_sentences(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        model_max_length=CONTEXT_LENGTH,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(path)

    eos = fast.convert_tokens_to_ids("<|endoftext|>")
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=CONTEXT_LENGTH,
        bos_token_id=eos,
        eos_token_id=[eos, fast.convert_tokens_to_ids("<|end|>")],
        pad_token_id=eos,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    return path
