"""Ctrl-C and SIGTERM (a cluster's pre-emption) end a run with a resumable checkpoint, not lost work.

While fitting, both signals only raise a flag. At the end of the batch being trained, every rank agrees
to stop (the flag is OR-reduced under DDP, so all ranks save the same step), `checkpoints/last.ckpt` is
written (atomically), and fitting ends with TrainingInterrupted; train() then prints the command that
resumes the run exactly there. A second Ctrl-C quits at once. From the first training batch to the end of
fit the handlers replace Lightning's own SIGTERM handler, so a signal during validation lets it finish.
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from pathlib import Path

import lightning as L


class TrainingInterrupted(SystemExit):
    """Fit stopped on a signal after saving `checkpoint`; exits with 128 + the signal number."""

    def __init__(self, signum: int, checkpoint: Path, epoch: int, step: int) -> None:
        super().__init__(128 + signum)
        self.signum, self.checkpoint, self.epoch, self.step = signum, checkpoint, epoch, step

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


class GracefulInterrupt(L.Callback):
    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _flag(self, signum, frame) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C
        self.signum = signum
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\n{what}: finishing this batch, then saving a checkpoint to resume from (Ctrl-C again quits at once)",
              file=sys.stderr, flush=True)  # fmt: skip

    def on_train_start(self, trainer, pl_module) -> None:
        # Not on_fit_start: Lightning installs its SIGTERM handler after that hook, and its handler runs a
        # collective broadcast inside the signal handler, which deadlocks when one rank alone is signalled.
        self.signum = None
        if threading.current_thread() is threading.main_thread():  # only there can Python take signals
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._flag)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_fit_end(self, trainer, pl_module) -> None:
        self._restore_handlers()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_handlers()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        stop = self.signum is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        ckpt = trainer.checkpoint_callback
        folder = (
            Path(ckpt.dirpath) if ckpt is not None and ckpt.dirpath else Path(trainer.default_root_dir, "checkpoints")
        )
        path = folder / "last.ckpt"
        trainer.save_checkpoint(path)  # every rank takes part; rank 0 writes
        raise TrainingInterrupted(self.signum or signal.SIGTERM, path, trainer.current_epoch, trainer.global_step)


def resume_command(overrides: list[str], checkpoint: Path) -> str:
    """The command line that continues a run from `checkpoint` with the same settings."""
    kept = [o for o in overrides if not o.startswith(("ckpt_path=", "hydra."))]
    return " ".join(["python", shlex.quote(sys.argv[0] or "train.py"), *map(shlex.quote, kept),
                     shlex.quote(f"ckpt_path={checkpoint.resolve()}")])  # fmt: skip
