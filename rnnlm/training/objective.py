"""What training minimises: the teacher-forced NLL of a batch, its average, and AWD-LSTM's AR/TAR penalties.

The loss is summed in one fused call (score_window: the cell, then the output layer fused with its loss), so
module.compile compiles it whole. What it is divided by is module.loss_average: per target token
(pytorch/examples, lr 20) or per sequence (Zaremba et al. 2014, whose lr 1 is per sequence: the same gradient
direction, bptt times larger).
"""

from __future__ import annotations

from typing import Any

import torch

from rnnlm import checks
from rnnlm.data.batch import Batch
from rnnlm.errors import UserError
from rnnlm.models.regularisers import activation_penalty
from rnnlm.models.rnn_lm import RNNLanguageModel

LOSS_AVERAGES = ("tokens", "sequences")


def score_window(net: RNNLanguageModel, inputs: torch.Tensor, hidden: Any, targets: torch.Tensor, pad: int):
    """The summed NLL of one batch (or window) and what the step needs besides: the final state and the last
    layer's output before and after its dropout (AR/TAR)."""
    features, hidden, raw, dropped = net.encode(inputs, hidden)
    return net.nll(features.flatten(0, 1), targets.flatten(), pad), hidden, raw, dropped


def training_loss(nll, raw, dropped, batch: Batch, pad: int, loss_average: str, ar: float, tar: float):
    """The optimised loss: the mean per target token, or (sequences) the sum over each sequence's steps
    averaged over the batch rows; AR/TAR weighted against the per-token loss, as AWD-LSTM's, and scaled alike
    when the loss sums over steps."""
    per_sequence = loss_average == "sequences"
    loss = nll / batch.inputs.shape[0] if per_sequence else nll / batch.num_tokens
    if ar or tar:
        penalty = activation_penalty(raw, dropped, (batch.targets != pad).float(), ar, tar)
        loss = loss + penalty * (batch.num_tokens / batch.inputs.shape[0] if per_sequence else 1.0)
    return loss


def check_penalties(ar: float, tar: float) -> None:
    checks.number("module.ar", ar, 0.0, None)
    checks.number("module.tar", tar, 0.0, None)


def check_loss_average(loss_average: str) -> None:
    if loss_average not in LOSS_AVERAGES:
        raise UserError(f"module.loss_average={loss_average!r} is not known: use tokens or sequences.")
