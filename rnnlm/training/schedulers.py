"""Learning-rate schedules the published recipes use that torch has no single class for, and the per-step
scaling of variable-length windows."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from rnnlm import checks
from rnnlm.errors import UserError

log = logging.getLogger(__name__)


class ConstantThenDecay(LRScheduler):
    """The learning rate held for `keep_epochs` epochs, then multiplied by `decay` after every further epoch
    (Zaremba et al. 2014: small keeps lr 1 for 4 epochs then x0.5, medium 6 then x0.8, large 14 then /1.15).

    Epoch e (from 0) trains with base_lr * decay ** max(0, e + 1 - keep_epochs). Stepped once per epoch.
    """

    def __init__(self, optimizer: Optimizer, keep_epochs: int, decay: float, last_epoch: int = -1) -> None:
        checks.integer("scheduler.keep_epochs", keep_epochs, 0)
        checks.number("scheduler.decay", decay, 0.0, 1.0, high_open=False, low_open=True)
        self.keep_epochs, self.decay = keep_epochs, decay
        super().__init__(optimizer, last_epoch)

    def _factor(self) -> float:
        return self.decay ** max(0, self.last_epoch + 1 - self.keep_epochs)

    def get_lr(self) -> list[float]:
        return [base * self._factor() for base in self.base_lrs]

    _get_closed_form_lr = get_lr


DECAYS = ("cosine", "linear", "none")


class Warmup(LRScheduler):
    """The learning rate raised linearly from 0 over `warmup_steps` optimizer steps, then decayed to
    `floor` x the base rate at `total_steps` (cosine or linear) or held (none): the Transformer's schedule,
    stepped every optimizer step. `total_steps` None: the run's own, set once training starts (`run_length`).

    Step s (from 0) trains with base_lr * min(1, (s + 1) / warmup_steps) during warm-up.
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int | None = None, decay: str = "cosine",
                 floor: float = 0.0, last_epoch: int = -1) -> None:  # fmt: skip
        checks.integer("scheduler.warmup_steps", warmup_steps, 0)
        checks.integer("scheduler.total_steps", total_steps, optional=True)
        checks.number("scheduler.floor", floor, 0.0, 1.0, high_open=False)
        if decay not in DECAYS:
            raise UserError(f"scheduler.decay={decay} is not known: use {' or '.join(DECAYS)}.")
        self.warmup_steps, self.total_steps, self.decay, self.floor = warmup_steps, None, decay, floor
        if total_steps is not None:
            self.run_length(total_steps)
        super().__init__(optimizer, last_epoch)

    def run_length(self, total_steps: int) -> None:
        self.total_steps = total_steps
        if self.warmup_steps >= total_steps:
            log.warning(
                "scheduler.warmup_steps=%d is not less than this run's %d optimizer steps: the rate never reaches "
                "optim.lr; set scheduler.warmup_steps lower.", self.warmup_steps, total_steps,
            )  # fmt: skip

    def _factor(self) -> float:
        step = self.last_epoch  # LRScheduler counts its step() calls in last_epoch
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.decay == "none":
            return 1.0
        total = self.total_steps or step  # not yet known only before the first step: no decay yet
        done = min(1.0, (step - self.warmup_steps) / max(1, total - self.warmup_steps))
        shape = 0.5 * (1 + math.cos(math.pi * done)) if self.decay == "cosine" else 1 - done
        return self.floor + (1 - self.floor) * shape

    def get_lr(self) -> list[float]:
        return [base * self._factor() for base in self.base_lrs]

    _get_closed_form_lr = get_lr


def run_steps(estimated: float) -> int:
    """A run's optimizer steps, for `scheduler.total_steps: null`, from the trainer's estimate."""
    if not math.isfinite(estimated):
        raise UserError("scheduler.total_steps=null takes the run's length, but this run has none: set "
                        "trainer.max_epochs or trainer.max_steps, or give scheduler.total_steps.")  # fmt: skip
    return max(1, int(estimated))


@contextmanager
def scaled_learning_rate(optimizer: Optimizer, scale: float) -> Iterator[None]:
    """Every group's learning rate times `scale` for one step (AWD-LSTM's variable windows: length / bptt)."""
    if scale == 1.0:
        yield
        return
    lrs = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] *= scale
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, lrs):
            group["lr"] = lr
