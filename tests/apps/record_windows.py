"""Test callbacks for stream mode: what every rank trained on, and a checkpoint saved mid-epoch."""

import json
from pathlib import Path

import lightning as L


class RecordWindows(L.Callback):
    """Every rank writes down the inputs of its windows per epoch (rank<r>_epoch<e>.json: windows x rows x
    steps) and, at `save_at_step`, saves a checkpoint on every rank together (the way Lightning saves)."""

    def __init__(self, out: str, save_at_step: int = 0) -> None:
        self.out, self.save_at_step = Path(out), save_at_step
        self.seen: list = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(batch.inputs.tolist())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.save_at_step:
            trainer.save_checkpoint(self.out / "mid.ckpt")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"rank{trainer.global_rank}_epoch{trainer.current_epoch}.json"
        path.write_text(json.dumps(self.seen))
