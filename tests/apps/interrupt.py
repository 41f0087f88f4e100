"""A test callback: send this process a signal after a given training step, as a cluster or Ctrl-C would."""

import os

import lightning as L


class SignalAt(L.Callback):
    """rank: signal only that DDP rank's process (the others must learn of it from the stop agreement).
    group: signal the whole process group, as Ctrl-C in a terminal does (data-loader workers included)."""

    def __init__(self, step: int, signum: int = 15, rank: int | None = None, group: bool = False) -> None:
        self.step, self.signum, self.rank, self.group = step, signum, rank, group

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and self.rank in (None, trainer.global_rank):
            if self.group:
                os.killpg(os.getpgid(0), self.signum)
            else:
                os.kill(os.getpid(), self.signum)
