"""A test callback: send this process a signal after a given training step, as a cluster or Ctrl-C would."""

import os

import lightning as L


class SignalAt(L.Callback):
    def __init__(self, step: int, signum: int = 15) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
