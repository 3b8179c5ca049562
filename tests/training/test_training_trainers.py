"""`arena train sft|dpo|reward` on the tiny model: each run learns what its data teaches, the
loss falls on the assistant's words only, and bad input is a clear exit-2 error."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from arena.cli import app
from training.training_data import (
    mean_answer_loss,
    preference_margin,
    preference_pairs,
    sft_conversations,
    write_jsonl,
)

pytestmark = pytest.mark.local
runner = CliRunner()


def _train(*args: str):
    return runner.invoke(app, ["train", *[str(a) for a in args]])


def said(result, text: str) -> bool:
    """Does the CLI's output say ``text`` (Rich wraps error panels at any width)?"""
    flat = " ".join(result.output.replace("│", " ").split())
    return " ".join(text.split()) in flat


def _ok(result) -> None:
    assert result.exit_code == 0, result.output + repr(result.exception)


@pytest.mark.parametrize("variant", ["per_turn", "assistant_only"])
def test_sft_lowers_the_loss_on_answers(variant, tiny_model, marked_model, tmp_path):
    model = tiny_model if variant == "per_turn" else marked_model
    conversations = sft_conversations()
    data = write_jsonl(tmp_path / "sft.jsonl", [{"messages": c} for c in conversations])
    out = tmp_path / "out"
    before = mean_answer_loss(model, conversations)
    result = _train("sft", "--model", model, "--data", data, "--output", out,
                    "--max-steps", 30, "--learning-rate", 1e-3, "--cpu")  # fmt: skip
    _ok(result)
    summary = json.loads((out / "arena_training.json").read_text())
    assert summary["loss_on"] == variant
    assert summary["steps"] == 30
    after = mean_answer_loss(out, conversations)
    assert after < before * 0.8, (before, after)


def test_loss_masks_everything_but_answers(tiny_model, marked_model, tmp_path):
    """Both ways of masking leave user turns and template tokens out of the loss."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from arena.training.data_files import per_turn_examples

    messages = sft_conversations(1)[0]
    for model, rows, flags in (
        (tiny_model, per_turn_examples(messages), {"completion_only_loss": True}),
        (marked_model, [{"messages": messages}], {"assistant_only_loss": True}),
    ):
        tokenizer = AutoTokenizer.from_pretrained(model)
        trainer = SFTTrainer(
            model=AutoModelForCausalLM.from_pretrained(model),
            args=SFTConfig(output_dir=tmp_path, report_to="none", use_cpu=True, **flags),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
        learned = [
            tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != -100])
            for ids, labels in zip(
                batch["input_ids"].tolist(), batch["labels"].tolist(), strict=True
            )
        ]
        text = "".join(learned)
        for message in messages:
            assert (message["content"] in text) == (message["role"] == "assistant"), text
        assert "<|user|>" not in text and "<|end|>" in text  # learns to stop, not to ask


def test_dpo_raises_the_chosen_over_rejected_margin(tiny_model, tmp_path):
    pairs = preference_pairs(24)
    data = write_jsonl(tmp_path / "pref.jsonl", pairs)
    out = tmp_path / "dpo"
    before = preference_margin(tiny_model, pairs)
    _ok(_train("dpo", "--model", tiny_model, "--data", data, "--output", out,
               "--max-steps", 15, "--learning-rate", 1e-3, "--cpu"))  # fmt: skip
    after = preference_margin(out, pairs)
    assert after > before + 1.0, (before, after)
    assert json.loads((out / "arena_training.json").read_text())["kind"] == "dpo"


def test_reward_model_beats_chance_on_held_out_votes(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "pref.jsonl", preference_pairs(40))
    out = tmp_path / "reward"
    result = _train("reward", "--model", tiny_model, "--data", data, "--output", out,
                    "--max-steps", 30, "--learning-rate", 1e-3, "--eval-fraction", 0.25,
                    "--cpu")  # fmt: skip
    _ok(result)
    summary = json.loads((out / "arena_training.json").read_text())
    assert summary["held_out_pairs"] == 10 and summary["pairs"] == 30
    assert summary["held_out_accuracy"] >= 0.8
    assert "accuracy on 10 held-out votes" in result.output

    # The saved model scores a held-out style pair the same way.
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    pair = preference_pairs(60)[55]
    scores = []
    for side in ("chosen", "rejected"):
        text = tokenizer.apply_chat_template(pair["prompt"] + pair[side], tokenize=False)
        with torch.no_grad():
            scores.append(float(model(**tokenizer(text, return_tensors="pt")).logits[0, 0]))
    assert scores[0] > scores[1]


def test_ties_are_skipped_by_preference_training(tiny_model, tmp_path):
    pairs = preference_pairs(6)
    pairs[0]["winner"] = "tie"
    data = write_jsonl(tmp_path / "pref.jsonl", pairs)
    out = tmp_path / "dpo"
    _ok(_train("dpo", "--model", tiny_model, "--data", data, "--output", out,
               "--max-steps", 1, "--cpu"))  # fmt: skip
    summary = json.loads((out / "arena_training.json").read_text())
    assert summary["pairs"] == 5 and summary["ties_skipped"] == 1


def test_checkpoints_and_resume(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "sft.jsonl", [{"messages": c} for c in sft_conversations(4)])
    out = tmp_path / "out"
    _ok(_train("sft", "--model", tiny_model, "--data", data, "--output", out,
               "--max-steps", 4, "--save-steps", 2, "--cpu"))  # fmt: skip
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    again = _train("sft", "--model", tiny_model, "--data", data, "--output", out, "--cpu")
    assert again.exit_code == 2 and said(again, "already holds a trained model")
    _ok(_train("sft", "--model", tiny_model, "--data", data, "--output", out,
               "--max-steps", 6, "--save-steps", 2, "--resume", "--cpu"))  # fmt: skip
    summary = json.loads((out / "arena_training.json").read_text())
    assert summary["steps"] == 6
    fresh = tmp_path / "fresh"
    result = _train("sft", "--model", tiny_model, "--data", data, "--output", fresh, "--resume")
    assert result.exit_code == 2 and said(result, "no checkpoint")


def test_bad_inputs_are_clear_errors(tiny_model, tmp_path):
    sft = write_jsonl(tmp_path / "sft.jsonl", [{"messages": c} for c in sft_conversations(2)])
    prefs = write_jsonl(tmp_path / "pref.jsonl", preference_pairs(2))
    out = tmp_path / "out"
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    long = write_jsonl(
        tmp_path / "long.jsonl",
        [{"messages": [{"role": "user", "content": "word " * 400},
                       {"role": "assistant", "content": "ok"}]}],
    )  # fmt: skip
    cases = [
        (("sft", "--model", not_a_model, "--data", sft), "not a model directory"),
        (("sft", "--model", tmp_path / "missing", "--data", sft), "not a directory"),
        (("sft", "--model", tiny_model, "--data", prefs), "is this a preference file"),
        (("dpo", "--model", tiny_model, "--data", sft), "is this an SFT file"),
        (("sft", "--model", tiny_model, "--data", tmp_path / "nope.jsonl"), "no data file"),
        (("sft", "--model", tiny_model, "--data", sft, "--max-length", 4096), "does not fit"),
        (("sft", "--model", tiny_model, "--data", long, "--max-length", 128), "longer than 128"),
        (("sft", "--model", tiny_model, "--data", sft, "--adapter-only"), "needs --lora"),
    ]
    for args, message in cases:
        result = _train(*args, "--output", out)
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert said(result, message), (args, result.output)
        assert "Traceback" not in result.output
    assert not out.exists()


def test_sft_reads_sharegpt_parquet(tiny_model, tmp_path):
    """The ShareGPT layout `arena export sft --format sharegpt` writes, here as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from arena.training.training_records import to_sharegpt

    records = [{"conversations": to_sharegpt(c)} for c in sft_conversations(4)]
    data = tmp_path / "sft.parquet"
    pq.write_table(pa.Table.from_pylist(records), data)
    out = tmp_path / "out"
    _ok(_train("sft", "--model", tiny_model, "--data", data, "--output", out,
               "--max-steps", 1, "--cpu"))  # fmt: skip
    summary = json.loads((out / "arena_training.json").read_text())
    assert summary["conversations"] == 4 and summary["examples"] == 8
