"""Ctrl-C and SIGTERM (a cluster's pre-emption) end a run with a resumable checkpoint.

While training, both signals only raise a flag (rnnlm/lifecycle/stop_guard.py holds the handlers and the
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


class TrainingInterrupted(SystemExit):
    """Fit stopped on a signal after saving `checkpoint`; exits with 128 + the signal number."""

    def __init__(self, signum: int, checkpoint: Path, epoch: int, step: int) -> None:
        super().__init__(128 + signum)
        self.signum, self.checkpoint, self.epoch, self.step = signum, checkpoint, epoch, step

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


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
