"""Helpers of the training tests: learnable synthetic data, a tiny model with a chat
template, and the log-likelihoods the tests compare before and after training."""

from __future__ import annotations

import json
from pathlib import Path

from support.tiny_model import training_sentences

# The same template as the tiny model's, with TRL's markers around the assistant's answer.
MARKED_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}<|assistant|>\n"
    "{% generation %}{{ message['content'] }}<|end|>\n{% endgeneration %}"
    "{% else %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
MARKER = " Paris is the capital."


def sft_conversations(count: int = 16) -> list[list[dict[str, str]]]:
    s = training_sentences()
    return [
        [
            {"role": "user", "content": f"Tell me about item {i}"},
            {"role": "assistant", "content": s[i * 7]},
            {"role": "user", "content": "And then?"},
            {"role": "assistant", "content": s[i * 7 + 3]},
        ]
        for i in range(count)
    ]


def preference_pairs(count: int = 40) -> list[dict]:
    """Chosen answers carry ``MARKER``; rejected ones are other sentences: learnable."""
    s = training_sentences()
    return [
        {
            "prompt": [{"role": "user", "content": f"Where is thing {i}?"}],
            "chosen": [{"role": "assistant", "content": s[i * 11] + MARKER}],
            "rejected": [{"role": "assistant", "content": s[i * 11 + 5]}],
        }
        for i in range(count)
    ]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def answer_logprob(model_dir: Path, prompt: list[dict], answer: list[dict]) -> float:
    """Sum of the log-probabilities of ``answer``'s tokens after ``prompt`` (chat template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = _cached_model(model_dir, AutoModelForCausalLM)
    head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(prompt + answer, tokenize=False)
    assert full.startswith(head)
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    logprobs = torch.log_softmax(logits[:-1], dim=-1)
    targets = torch.tensor(ids[1:])
    picked = logprobs[torch.arange(len(targets)), targets]
    return float(picked[len(head_ids) - 1 :].sum())


_MODELS: dict[str, object] = {}


def _cached_model(model_dir: Path, auto_class) -> object:
    key = str(model_dir)
    if key not in _MODELS:
        _MODELS[key] = auto_class.from_pretrained(model_dir).eval()
    return _MODELS[key]


def mean_answer_loss(model_dir: Path, conversations: list[list[dict]]) -> float:
    """Mean negative log-likelihood per assistant answer over ``conversations``."""
    losses = []
    for messages in conversations:
        for i, message in enumerate(messages):
            if message["role"] == "assistant":
                losses.append(-answer_logprob(model_dir, messages[:i], [message]))
    return sum(losses) / len(losses)


def preference_margin(model_dir: Path, pairs: list[dict]) -> float:
    """Mean log p(chosen) - log p(rejected) over ``pairs``."""
    total = 0.0
    for pair in pairs:
        chosen = answer_logprob(model_dir, pair["prompt"], pair["chosen"])
        rejected = answer_logprob(model_dir, pair["prompt"], pair["rejected"])
        total += chosen - rejected
    return total / len(pairs)
