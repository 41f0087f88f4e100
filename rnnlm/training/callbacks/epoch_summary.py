"""One line per epoch on the terminal and in train.log, and the per-epoch history results.json keeps."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L

log = logging.getLogger("rnnlm")
KEYS = ("train/ppl", "val/ppl", "train/bpc", "val/bpc", "train/tokens_per_sec")  # bpc: character tokenizers


class EpochSummary(L.Callback):
    """History of finished epochs (train/val perplexity, tokens/s, the training seconds so far: `time_s`, a
    resumed run's counted on from its last recorded epoch), printed by rank 0 as each one ends.

    Lightning calls callbacks' `on_train_epoch_end` before the module's, where the training perplexity is
    logged, and saves the epoch's checkpoint after both. So an epoch is recorded in the first place after
    the module's hook: when that checkpoint asks for this callback's state (so the checkpoint holds the
    epoch it ends), or, in a run without checkpoints, at the next epoch's start or the end of training.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self._trained: int | None = None  # the epoch whose training batches are done, not yet recorded
        self._started: float | None = None  # this process's training start (perf_counter)
        self._before = 0.0  # the training seconds of the run before this process (a resumed run's)

    def _record(self, trainer) -> None:
        if self._trained is None:
            return
        m = trainer.callback_metrics
        entry = {"epoch": self._trained, **{k: float(m[k]) for k in KEYS if k in m}}
        if self._started is not None:  # seconds of training (validation included) since the run began
            entry["time_s"] = self._before + time.perf_counter() - self._started
        self.history.append(entry)
        self._trained = None
        if trainer.is_global_zero:
            parts = [f"epoch {entry['epoch']}"]
            parts += [f"{k} {entry[k]:.2f}" for k in ("train/ppl", "val/ppl") if k in entry]
            parts += [f"{k} {entry[k]:.3f}" for k in ("val/bpc",) if k in entry]
            if "train/tokens_per_sec" in entry:
                parts.append(f"{entry['train/tokens_per_sec']:.0f} tokens/s")
            log.info(" | ".join(parts))

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()
        self._before = self.history[-1].get("time_s", 0.0) if self.history else 0.0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._trained = trainer.current_epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._record(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._record(trainer)

    def state_dict(self) -> dict[str, Any]:
        # Lightning asks for this while saving a checkpoint; at the end of an epoch that is after the module
        # logged train/ppl, so the epoch the checkpoint ends is recorded first. (ddp_spawn also hands this
        # state back to the main process.)
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and self._trained == trainer.current_epoch:
            self._record(trainer)
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("rnnlm_history", []))  # checkpoints from before this callback
