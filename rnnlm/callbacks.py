"""Training callbacks that are ours rather than Lightning's."""

from __future__ import annotations

import time

import lightning as L


class TokenThroughput(L.Callback):
    """Target tokens per second of training, on the progress bar (`tok/s`) and logged per epoch.

    Time runs from one training batch's end to the next, so data loading counts and validation (which
    restarts the clock) does not. Counts come from Batch.num_tokens, computed on the host by the collate
    step, so measuring costs no device synchronisation.
    """

    def __init__(self, prog_bar: bool = True) -> None:
        self.prog_bar = prog_bar
        self.tokens, self.seconds, self._last = 0, 0.0, 0.0

    def _restart_clock(self, *_) -> None:
        self._last = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.tokens, self.seconds = 0, 0.0
        self._restart_clock()

    on_validation_end = _restart_clock

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        self.seconds += now - self._last
        self._last = now
        self.tokens += batch.num_tokens
        pl_module.log("tok/s", self.tokens / self.seconds, on_step=True, on_epoch=False, prog_bar=self.prog_bar,
                      logger=False)  # fmt: skip

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.seconds > 0:
            pl_module.log("train/tokens_per_sec", self.tokens / self.seconds, on_step=False, on_epoch=True)
