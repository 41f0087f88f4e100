"""Weight averaging: a running average of the network's parameters that evaluation, checkpoints, generation and
scoring use once it has started, while the optimizer goes on updating the raw weights.

- nt_asgd: AWD-LSTM's non-monotonically triggered ASGD. Train with SGD; after a validation whose loss is worse
  than the best of all but the last `nonmono` ones, average every later step's weights uniformly. With
  torch.optim.ASGD(t0=0, lambd=0), what AWD-LSTM switches to, the update is SGD's and `ax` this average
  (tested to match), so the optimizer stays the configured SGD.
- swa: uniform averaging from the start of epoch `start_epoch`, with any optimizer (torch's swa_utils' rule).
- ema: exponential averaging (`decay`) from the start of epoch `start_epoch` (default 0).

`start_epoch=0` with nt_asgd averages from the first step and `stop=true` ends the run when validation stops
improving by the same rule: AWD-LSTM's fine-tuning stage (finetune.py), run with `init_from=` (docs/AWD.md).
A checkpoint holds the average as the model's weights (so eval.py, generate.py and load_model read it with
no extra step) and the raw weights beside it, so a resumed run goes on exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn, get_swa_multi_avg_fn

from rnnlm import checks
from rnnlm.errors import UserError

KINDS = ("none", "nt_asgd", "swa", "ema")
STATE_KEY = "rnnlm_averaging"


def check_averaging(kind: str = "none", nonmono: int = 5, start_epoch: int | None = None, decay: float = 0.999,
                    stop: bool = False, optimizer: str | None = None) -> None:  # fmt: skip
    if kind not in KINDS:
        raise UserError(f"module.averaging.kind={kind!r} is not known: use one of {', '.join(KINDS)}.")
    checks.integer("module.averaging.nonmono", nonmono, 1)
    checks.integer("module.averaging.start_epoch", start_epoch, 0, optional=True)
    checks.number("module.averaging.decay", decay, 0.0, 1.0, low_open=True)
    checks.boolean("module.averaging.stop", stop)
    if kind == "swa" and start_epoch is None:
        raise UserError("module.averaging.kind=swa needs module.averaging.start_epoch (the epoch averaging begins).")
    if kind == "nt_asgd" and optimizer not in (None, "torch.optim.SGD"):
        raise UserError(
            f"module.averaging.kind=nt_asgd averages SGD steps (AWD-LSTM's ASGD) and optim is {optimizer}: "
            "use optim=sgd, or module.averaging.kind=swa or ema to average another optimizer's weights."
        )


class WeightAverage:
    def __init__(
        self, kind: str = "none", nonmono: int = 5, start_epoch: int | None = None, decay: float = 0.999,
        stop: bool = False,
    ) -> None:  # fmt: skip
        check_averaging(kind, nonmono, start_epoch, decay, stop)
        self.kind, self.nonmono, self.start_epoch, self.stop = kind, nonmono, start_epoch, stop
        self.decay = decay
        self.average: list[torch.Tensor] | None = None  # one per parameter of the network, once started
        self.count = 0  # steps averaged
        self.started_epoch: int | None = None
        self.val_losses: list[float] = []  # every epoch's validation loss (nt_asgd's trigger)
        self._raw: list[torch.Tensor] | None = None  # the raw weights while the average is swapped in

    @property
    def active(self) -> bool:
        return self.average is not None

    def start(self, net: nn.Module, epoch: int) -> None:
        self.average = [p.detach().clone() for p in net.parameters()]
        self.count, self.started_epoch = 0, epoch

    def on_epoch_start(self, net: nn.Module, epoch: int) -> None:
        start = 0 if self.kind == "ema" and self.start_epoch is None else self.start_epoch
        if self.kind != "none" and not self.active and start is not None and epoch >= start:
            self.start(net, epoch)

    def after_validation(self, net: nn.Module, epoch: int, val_loss: float) -> str | None:
        """Record the epoch's validation loss. When it is worse than the best of all but the last `nonmono`
        (AWD-LSTM's rule), nt_asgd starts averaging ("started"), and a run already averaging with `stop`
        ends ("stop": AWD-LSTM's fine-tuning stops there)."""
        losses, self.val_losses = self.val_losses, [*self.val_losses, val_loss]
        if self.kind == "none" or len(losses) <= self.nonmono or val_loss <= min(losses[: -self.nonmono]):
            return None
        if self.active:
            return "stop" if self.stop else None
        if self.kind == "nt_asgd":
            self.start(net, epoch + 1)
            return "started"
        return None

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        if not self.active:
            return
        params = [p.detach() for p in net.parameters()]
        if self.average[0].device != params[0].device:
            self.average = [a.to(p.device) for a, p in zip(self.average, params)]
        # torch's ASGD (AWD-LSTM's) replaces its first step's weights by the second's: ax is the mean of the
        # weights after steps 2..k; nt_asgd keeps that to the digit.
        averaged = max(self.count - 1, 0) if self.kind == "nt_asgd" else self.count
        # Made per call: a stored closure would not pickle (ddp_spawn sends the module to its ranks).
        average_fn = get_ema_multi_avg_fn(self.decay) if self.kind == "ema" else get_swa_multi_avg_fn()
        average_fn(self.average, params, torch.tensor(averaged, device=params[0].device))
        self.count += 1

    @torch.no_grad()
    def swap_in(self, net: nn.Module) -> None:
        """Evaluate with the average (a no-op before it has started or when already in)."""
        if not self.active or self._raw is not None or self.count == 0:
            return
        params = list(net.parameters())
        self._raw = [p.detach().clone() for p in params]
        for p, a in zip(params, self.average):
            p.copy_(a)

    @torch.no_grad()
    def swap_out(self, net: nn.Module) -> None:
        if self._raw is None:
            return
        for p, raw in zip(net.parameters(), self._raw):
            p.copy_(raw)
        self._raw = None

    def raw_weights(self, net: nn.Module) -> list[torch.Tensor]:
        return self._raw if self._raw is not None else [p.detach() for p in net.parameters()]

    def evaluated_weights(self, net: nn.Module) -> list[torch.Tensor]:
        return self.average if self.active and self.count > 0 else self.raw_weights(net)

    def save(self, checkpoint: dict[str, Any], net: nn.Module, prefix: str = "net.") -> None:
        """The average becomes the checkpoint's model weights; the raw weights and the trigger's history
        go beside them (before any step was averaged the two are the same: only the history is kept)."""
        averaged = self.active and self.count > 0
        state = checkpoint.get("state_dict")
        if averaged and state is not None:
            for aliases, value in zip(_names(net), self.average):
                copy = value.detach().cpu().clone()
                for name in aliases:  # tied weights stay one tensor in the file
                    state[prefix + name] = copy
        checkpoint[STATE_KEY] = {
            "kind": self.kind, "count": self.count, "started_epoch": self.started_epoch,
            "val_losses": list(self.val_losses), "active": self.active,
            "raw": [w.detach().cpu().clone() for w in self.raw_weights(net)] if averaged else None,
        }  # fmt: skip

    def load(self, checkpoint: dict[str, Any], net: nn.Module, resuming: bool, prefix: str = "net.") -> None:
        """Resuming training: the state dict's weights become the average again and the raw ones go back in
        place for the optimizer. Evaluating (test after fit, eval.py): the average is the model; nothing runs."""
        saved = checkpoint.get(STATE_KEY)
        self.average, self._raw, self.count = None, None, 0
        if not resuming or saved is None:
            return
        state = checkpoint["state_dict"]
        names = _names(net)
        if self.kind != "none":  # averaging switched off on resuming: training goes on from the raw weights alone
            self.val_losses, self.started_epoch = list(saved["val_losses"]), saved["started_epoch"]
            self.count = saved["count"]
            self.average = [state[prefix + aliases[0]].clone() for aliases in names] if saved["active"] else None
        for aliases, raw in zip(names, saved["raw"] or ()):
            for name in aliases:
                state[prefix + name] = raw


def _names(net: nn.Module) -> list[list[str]]:
    """Each parameter's state-dict names, in net.parameters() order (tied weights have two)."""
    by_id: dict[int, list[str]] = {}
    for name, p in net.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), []).append(name)
    return [by_id[id(p)] for p in net.parameters()]
