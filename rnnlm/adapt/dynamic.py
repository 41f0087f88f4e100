"""Dynamic evaluation (Krause et al. 2018, "Dynamic Evaluation of Neural Sequence Models"): after each segment is
scored, one gradient step on it, so the model adapts to the text it is reading.

The published rule (rule=rms), per parameter tensor, with g the gradient of the segment's mean NLL:

    theta <- theta - lr * g / (MS + eps) + decay * min(MS / mean MS, 1 / decay) * (theta0 - theta)

MS is the root mean square of training gradients, gathered once (rnnlm.adapt.statistics), and theta0 the trained
weights: parameters whose training gradients are large move less and are pulled back harder. rule=sgd is the
paper's SGD variant, theta <- theta - lr * g + decay * (theta0 - theta), which needs no statistics.

One update per segment over all parameters in a handful of fused (foreach) operations; the weights are fp32 and
the network's own copy of them changes, so adaptation runs on a private copy (`adaptable`), never the caller's.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from rnnlm.adapt.settings import AdaptSettings
from rnnlm.errors import UserError

log = logging.getLogger("rnnlm")


def adaptable(net: nn.Module) -> nn.Module:
    """A private fp32 copy of `net` to adapt: eval mode (dropout and weight drop off). On a GPU the library's
    recurrent modules go to training mode with their dropout at zero, because cuDNN computes an RNN's gradients
    only in training mode (the failure of benkrause/dynamic-evaluation's issue 2)."""
    net = copy.deepcopy(net).float().eval()
    for p in net.parameters():
        p.requires_grad_(True)
    if next(net.parameters()).is_cuda:
        for m in net.modules():
            if isinstance(m, nn.RNNBase):
                m.dropout, m.weight_drop = 0.0, 0.0
                m.train()
    return net


class DynamicEvaluation:
    """The update of one reading; `theta0` is the network's weights when it is made."""

    def __init__(self, net: nn.Module, settings: AdaptSettings, ms: list[torch.Tensor] | None = None) -> None:
        self.params = list(net.parameters())
        self.theta0 = [p.detach().clone() for p in self.params]
        self.change = [torch.empty_like(p) for p in self.params]
        self.rms = settings.rule == "rms"
        lr, decay = settings.lr, settings.decay
        if self.rms:
            if ms is None or len(ms) != len(self.params):
                raise ValueError("the rms rule needs one statistics tensor per parameter")
            ms = [m.to(self.params[0].device, torch.float32) for m in ms]
            mean = torch.stack([m.mean() for m in ms]).mean()
            cap = 1.0 / decay if decay > 0 else float("inf")
            self.pull = [decay * (m / mean).clamp(max=cap) for m in ms]  # decay * min(MS/mean MS, 1/decay)
            self.step = [lr / (m + settings.eps) for m in ms]
        else:
            self.pull, self.step = decay, lr

    def __call__(self, loss: torch.Tensor) -> None:
        grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, grads)]
        with torch.no_grad():
            # In place on buffers kept across segments: a fresh multi-megabyte tensor per segment costs more in
            # page faults than the arithmetic (on a CPU, large blocks go back to the system when freed).
            change = self.change
            torch._foreach_copy_(change, self.theta0)
            torch._foreach_sub_(change, self.params)  # theta0 - theta, before this step moves it
            torch._foreach_mul_(change, self.pull)
            if self.rms:
                torch._foreach_addcmul_(change, grads, self.step, value=-1.0)
            else:
                torch._foreach_add_(change, grads, alpha=-self.step)
            torch._foreach_add_(self.params, change)


def check_statistics(settings: AdaptSettings, ms: list[torch.Tensor] | None, where: str) -> None:
    if settings.dynamic and settings.rule == "rms" and ms is None:
        raise UserError(
            f"adapt.rule=rms needs the RMS statistics of training gradients, and {where}: run "
            "`python eval.py ckpt_path=... adapt=dynamic` once with the data the model was trained on (it saves them "
            "beside the checkpoint), or use adapt.rule=sgd."
        )
