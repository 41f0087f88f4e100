"""Gradient clipping by global norm, the norm logged (clipping computes it anyway), and what a nan/inf
gradient does: stop the run with one sentence, or (module.skip_nonfinite) skip that step and count it."""

from __future__ import annotations

import logging

import torch

from rnnlm.errors import UserError
from rnnlm.lifecycle.checkpoint_io import what_is_kept
from rnnlm.training.step_logging import log_this_step

log = logging.getLogger("rnnlm")


def clip_and_check(module, gradient_clip_val: float | None, batch_idx: int) -> None:
    params = [p for p in module.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    trainer = module.trainer
    if log_this_step(trainer, batch_idx):
        module.log("train/grad_norm", norm, on_step=True, on_epoch=False)
    # fp16's loss scaler expects inf gradients now and then and skips those steps itself.
    scaled = getattr(trainer.precision_plugin, "scaler", None) is not None
    if not scaled and not torch.isfinite(norm):  # after DDP's all-reduce: every rank decides alike
        _nonfinite(module, params, float(norm), batch_idx)
    elif gradient_clip_val:
        torch.nn.utils.clip_grads_with_norm_(params, gradient_clip_val, norm)


def _nonfinite(module, params: list[torch.nn.Parameter], norm: float, batch_idx: int) -> None:
    trainer = module.trainer
    where = f"step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch_idx})"
    if not module.skip_nonfinite:
        raise UserError(
            f"training diverged: the gradient norm is {norm} at {where}: lower optim.lr or trainer.gradient_clip_val, "
            f"or set module.skip_nonfinite=true to skip such steps; {what_is_kept(trainer)}."
        )
    for p in params:
        p.grad = None  # the optimizer leaves parameters without a gradient untouched, moments included
    module.skipped_steps += 1
    log.warning("gradient norm %s at %s: step skipped (%d so far)", norm, where, module.skipped_steps)
    module.log("train/skipped_steps", float(module.skipped_steps), on_step=True, on_epoch=False)
