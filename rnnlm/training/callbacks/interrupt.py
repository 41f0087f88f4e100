"""GracefulInterrupt: the training side of the StopGuard (rnnlm/lifecycle/stop_guard.py and interrupt.py):
a Ctrl-C or SIGTERM flag turns into a checkpoint at a step every rank agrees on, then TrainingInterrupted."""

from __future__ import annotations

import signal

import lightning as L

from rnnlm.lifecycle.interrupt import TrainingInterrupted, last_checkpoint
from rnnlm.lifecycle.stop_guard import StopGuard


class GracefulInterrupt(L.Callback):
    """The training side of the StopGuard: the flag turns into a checkpoint at a step every rank agrees on."""

    def __init__(self, guard: StopGuard | None = None) -> None:
        self.guard = guard or StopGuard()
        self._owns_guard = False

    @property
    def signum(self) -> int | None:
        return self.guard.signum

    def setup(self, trainer, pl_module, stage: str) -> None:
        # A ddp_spawn rank is a fresh process that train() never ran in: it needs its own handlers.
        if not self.guard.active:
            self.guard.start()
            self._owns_guard = self.guard.active
        self.guard.trainer = self.guard.trainer or trainer

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._owns_guard:
            self.guard.stop()
            self._owns_guard = False

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self.guard.reinstall()

    def on_validation_start(self, trainer, pl_module) -> None:
        self.guard.reinstall()

    def on_test_start(self, trainer, pl_module) -> None:
        self.guard.reinstall()

    def on_train_start(self, trainer, pl_module) -> None:
        self.guard.reinstall()
        self.guard.graceful = True

    def on_fit_end(self, trainer, pl_module) -> None:
        self.guard.graceful = False

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.guard.graceful = False

    def _stop_if_asked(self, trainer, epoch: int | None = None) -> None:
        stop = self.guard.signum is not None
        if trainer.world_size > 1:  # every rank calls this at the same point, so the reduction always matches
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        path = last_checkpoint(trainer)
        trainer.save_checkpoint(path)  # every rank takes part; rank 0 writes
        self.guard.graceful = False
        epoch = trainer.current_epoch if epoch is None else epoch
        raise TrainingInterrupted(self.guard.signum or signal.SIGTERM, path, epoch, trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._stop_if_asked(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        # A signal during the last validation: fit has ended, but the test stage must not start. (The
        # epoch counter already counts the last epoch as done: name that epoch, as the log lines do.)
        self._stop_if_asked(trainer, epoch=max(trainer.current_epoch - 1, 0))
