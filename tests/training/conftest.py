"""Fixtures of the training tests: the tiny model, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("training-models"))


@pytest.fixture(scope="session")
def marked_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny model whose chat template carries TRL's generation markers."""
    import shutil

    from transformers import AutoTokenizer

    from training.training_data import MARKED_TEMPLATE

    path = tmp_path_factory.mktemp("marked") / "tiny-marked"
    shutil.copytree(tiny_model, path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = MARKED_TEMPLATE
    tokenizer.save_pretrained(path)
    return path
