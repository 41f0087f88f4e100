"""The state an exact mid-epoch resume needs besides the model, optimizer and loops: where the batch
sampler is, and the random streams. Both callbacks are added to every run (not part of `callbacks=`).
"""

from __future__ import annotations

from typing import Any

import lightning as L

from rnnlm.training import rng


class SamplerPosition(L.Callback):
    """Tells the bucket sampler how many of this epoch's batches were trained on.

    The position is saved with the loader's own state (ResumableLoader), so a run resumed mid-epoch skips
    exactly those batches. It is counted here because the loader runs ahead of training by its prefetch
    and cannot count for itself.
    """

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        sampler = getattr(trainer.train_dataloader, "batch_sampler", None)
        if hasattr(sampler, "consumed"):
            sampler.consumed = batch_idx + 1


class RandomState(L.Callback):
    """torch/numpy/Python random states in every checkpoint, restored just before the first resumed batch:
    whatever runs in between (the sanity check, opening the loader) must not shift dropout's stream."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return rng.capture()  # plain tensors and lists: the checkpoint still loads with weights_only=True

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending = state

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        self._pending = checkpoint.get("rnnlm_rng")  # checkpoints from before this callback kept it there

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self._pending is not None:
            rng.restore(self._pending)
            self._pending = None
