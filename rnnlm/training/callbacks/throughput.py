"""Training throughput: target tokens per second, on the progress bar and per epoch."""

from __future__ import annotations

import time

import lightning as L
import torch
import torch.distributed as dist

from rnnlm.training.step_logging import log_this_step


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
        if log_this_step(trainer, batch_idx):
            pl_module.log("tok/s", self.tokens / self.seconds, on_step=True, on_epoch=False, prog_bar=self.prog_bar,
                          logger=False)  # fmt: skip

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # Every rank runs this hook at the same point, so the collectives below are matched on every rank.
        # (Logging with sync_dist=True instead deferred the reduction to whoever first read the metrics: rank
        # 0's progress bar, while the other ranks were already summing the corpus NLL: a deadlock.)
        tokens, seconds = float(self.tokens), self.seconds
        if trainer.world_size > 1:
            device = trainer.strategy.root_device
            totals = [torch.tensor([v], dtype=torch.float64, device=device) for v in (tokens, seconds)]
            dist.all_reduce(totals[0], op=dist.ReduceOp.SUM)
            dist.all_reduce(totals[1], op=dist.ReduceOp.MAX)
            tokens, seconds = (float(t) for t in totals)
        if seconds > 0:
            # All ranks' tokens over the slowest rank's time: the run's throughput, identical on every rank.
            pl_module.log("train/tokens_per_sec", tokens / seconds, on_step=False, on_epoch=True)
