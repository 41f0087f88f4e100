"""A test callback: every rank writes down the sentences it trained on, per epoch (rank<r>_epoch<e>.json)."""

import json
from pathlib import Path

import lightning as L


class RecordBatches(L.Callback):
    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.seen: list[list[int]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        eos = pl_module.ids["eos"]
        for row in batch.targets.tolist():  # w1 ... wn <eos> [<pad> ...]
            self.seen.append(row[: row.index(eos)])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"rank{trainer.global_rank}_epoch{trainer.current_epoch}.json"
        path.write_text(json.dumps(self.seen))
