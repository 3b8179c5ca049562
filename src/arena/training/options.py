"""What a training run is asked to do (``arena train sft|dpo|reward`` options)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Learning rates that suit each kind of run (full weights, LoRA adapters).
DEFAULT_LEARNING_RATES = {
    "sft": (2e-5, 2e-4),
    "dpo": (1e-6, 5e-6),
    "reward": (1e-5, 1e-4),
}


@dataclass(frozen=True)
class TrainOptions:
    kind: str  # sft, dpo or reward
    model: Path
    data: Path
    output: Path
    max_steps: int | None = None
    epochs: float = 1.0
    learning_rate: float | None = None
    batch_size: int = 4
    gradient_accumulation: int = 1
    max_length: int | None = None
    drop_long: bool = False
    lora: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    adapter_only: bool = False
    resume: bool = False
    save_steps: int = 200
    seed: int = 0
    cpu: bool = False
    beta: float = 0.1
    eval_fraction: float = 0.1

    @property
    def lr(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        full, lora = DEFAULT_LEARNING_RATES[self.kind]
        return lora if self.lora else full

    @property
    def checkpoints(self) -> Path:
        return self.output / "checkpoints"
