"""WandbRunId: the wandb run's id kept in every checkpoint."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import WandbLogger


class WandbRunId(L.Callback):
    """Keeps the wandb run's id in every checkpoint, so a run resumed from it logs on to the same wandb run
    (train.py passes it to wandb_logger as `id`). Added to runs that log to wandb."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                checkpoint["wandb_run_id"] = str(lg.version)
