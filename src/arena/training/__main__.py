"""``python -m arena.training sft|dpo|reward ...``: the ``arena train`` commands as a module,
so ``accelerate launch -m arena.training ...`` runs them on several GPUs or machines."""

from __future__ import annotations

from arena.training.commands import build_train_app

if __name__ == "__main__":
    build_train_app()(prog_name="arena train")
