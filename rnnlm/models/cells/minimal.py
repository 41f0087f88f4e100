"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU and an LSTM whose gates read only
the input, not the previous state, so the recurrence is linear and a window runs at once (scan.py).

    minGRU:  z_t = sigmoid(W_z x_t),  h~_t = W_h x_t,  h_t = (1 - z_t) * h_{t-1} + z_t * h~_t
    minLSTM: f_t = sigmoid(W_f x_t),  i_t = sigmoid(W_i x_t),  h~_t = W_h x_t,
             f'_t, i'_t = f_t / (f_t + i_t), i_t / (f_t + i_t),  h_t = f'_t * h_{t-1} + i'_t * h~_t

These are the paper's sequential definitions; its log-space mode also passes h~ through a positive g, which
a linear-space scan does not need. Each layer is one linear map of the input (2 or 3 times the width): no
hidden-to-hidden weights, so nothing for weight drop to drop (model.weight_drop is refused). A window of one
token (generation) steps directly.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from rnnlm.models.cells.base import Cell
from rnnlm.models.cells.scan import linear_scan, wide
from rnnlm.models.cells.stack import LayerSettings, stack


class MinimalLayer(nn.Module):
    """One layer: `projections` linear maps of the input in one matrix, then the linear recurrence."""

    projections: ClassVar[int]

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size, self.projections * hidden_size)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        """x (batch, time, input) and state (1, batch, hidden) or None -> output (batch, time, hidden), state."""
        h0 = None if state is None else wide(state[0])
        a, b = self.coefficients(wide(self.linear(x)))
        if x.shape[1] == 1 and h0 is not None:
            h = self.step(a[:, 0], b[:, 0], h0)[:, None]
        else:
            h = linear_scan(a, b, h0)
        return h, h[:, -1][None]

    @staticmethod
    def step(a: torch.Tensor, b: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One time step, h_{t-1} (batch, hidden) -> h_t: the recurrence as written, the scan's reference."""
        return a * h + b


class MinGRULayer(MinimalLayer):
    projections = 2

    def coefficients(self, gates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, candidate = gates.chunk(2, dim=-1)
        z = torch.sigmoid(z)
        return 1 - z, z * candidate


class MinLSTMLayer(MinimalLayer):
    projections = 3

    def coefficients(self, gates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, i, candidate = gates.chunk(3, dim=-1)
        keep = torch.sigmoid(F.logsigmoid(f) - F.logsigmoid(i))  # f / (f + i)
        return keep, (1 - keep) * candidate


class MinGRU(Cell):
    Settings = LayerSettings  # widths, depth, dropout between layers: nothing of its own
    layer: ClassVar[type[MinimalLayer]] = MinGRULayer

    @classmethod
    def build(cls, settings: LayerSettings, input_size: int) -> nn.Module:
        return stack(settings, input_size, lambda i, width_in, width: cls.layer(width_in, width))


class MinLSTM(MinGRU):
    layer = MinLSTMLayer
