"""Ctrl-C and SIGTERM (a cluster's pre-emption) end a run with a resumable checkpoint.

While training, both signals only raise a flag (rnnlm/training/stop_guard.py holds the handlers and the
watcher that ends a stuck run). At the end of the batch being trained (or at the end of fit, when the
signal came during the last validation), every rank agrees to stop (the flag is OR-reduced under DDP, so
all ranks save the same step), `checkpoints/last.ckpt` is written (atomically) and fitting ends with
TrainingInterrupted, whose report names the command that resumes the run exactly there.
"""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path

import lightning as L
import torch

from rnnlm.training.stop_guard import StopGuard


class TrainingInterrupted(SystemExit):
    """Fit stopped on a signal after saving `checkpoint`; exits with 128 + the signal number."""

    def __init__(self, signum: int, checkpoint: Path, epoch: int, step: int) -> None:
        super().__init__(128 + signum)
        self.signum, self.checkpoint, self.epoch, self.step = signum, checkpoint, epoch, step

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


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


def last_checkpoint(trainer: L.Trainer) -> Path:
    """Where a stop saves (and a spawned rank's stop is read back from): checkpoints/last.ckpt of the run."""
    ckpt = trainer.checkpoint_callback
    folder = ckpt.dirpath if ckpt is not None and ckpt.dirpath else Path(trainer.default_root_dir, "checkpoints")
    return Path(folder) / "last.ckpt"


def resume_command(overrides: list[str], checkpoint: Path) -> str:
    """The command line that continues a run from `checkpoint` with the same settings."""
    kept = [o for o in overrides if not o.startswith(("ckpt_path=", "hydra."))]
    return " ".join(["python", shlex.quote(sys.argv[0] or "train.py"), *map(shlex.quote, kept),
                     shlex.quote(f"ckpt_path={checkpoint.resolve()}")])  # fmt: skip


def interrupted_from_checkpoint(signum: int, trainer: L.Trainer) -> TrainingInterrupted:
    """The report of a stop that happened in other processes (ddp_spawn ranks), read from their checkpoint."""
    path = last_checkpoint(trainer)
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True) if path.is_file() else {}
    return TrainingInterrupted(signum, path, int(state.get("epoch", 0)), int(state.get("global_step", 0)))
