"""Learning-rate schedules the published recipes use that torch has no single class for, and the per-step
scaling of variable-length windows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from rnnlm import checks


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
