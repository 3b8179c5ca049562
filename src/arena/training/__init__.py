"""Training on what the arena collects: supervised fine-tuning, DPO and reward models.

Two halves with different needs. The data half (``battle_rows``, ``training_records``,
``data_files``) turns voted battles into training files and reads them back; it needs only
the core install, so ``arena export sft|preferences`` work everywhere. The training half
(``model_io``, ``sft``, ``preference``, ``commands``) runs TRL, PEFT and accelerate and is
imported only by ``arena train`` (install ``arena[train]``). Importing this package imports
neither half.
"""
