"""The quasi-recurrent network (Bradbury et al. 2017), as AWD-LSTM's QRNN runs it.

Each layer computes its three gates from a convolution over the inputs, [x_{t-1}, x_t] (window 2) or x_t
(window 1): one matrix product for the whole window, since no gate reads the previous state. Then an
elementwise recurrence, "fo-pooling":

    z_t = tanh(W_z [x_{t-1}, x_t] + b_z),  f_t = sigmoid(W_f [...] + b_f),  o_t = sigmoid(W_o [...] + b_o)
    c_t = f_t * c_{t-1} + (1 - f_t) * z_t,   h_t = o_t * c_t

c_t is linear in c_{t-1}: the scan (scan.py) runs it over a window at once, and a window of one token
(generation) steps directly. A layer's state is its c and, for window 2, its last input x_{t-1}, so a
stream window, a resumed run and generation continue the convolution exactly. As in AWD-LSTM, the first layer
has the configured window and the others window 1, and weight drop masks the gate weights (`weight`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnlm.errors import UserError
from rnnlm.models.cells.base import Cell
from rnnlm.models.cells.recurrent import RecurrentSettings, WeightDropped
from rnnlm.models.cells.scan import linear_scan, wide
from rnnlm.models.cells.stack import stack
from rnnlm.models.settings import setting


def window_width(key: str, value: Any) -> None:
    if value not in (1, 2) or isinstance(value, bool):
        raise UserError(f"{key}={value!r} is not a convolution width the QRNN has: use 2 (the default) or 1.")


class QRNNLayer(nn.Module):
    dropped_weights = "weight"  # weight drop's target: the gate weights (AWD-LSTM's QRNN)

    def __init__(self, input_size: int, hidden_size: int, window: int) -> None:
        super().__init__()
        self.hidden_size, self.window = hidden_size, window
        self.parts = 2 if window == 2 else 1  # c, and the last input for the convolution
        self.weight = nn.Parameter(torch.empty(3 * hidden_size, window * input_size))
        self.bias = nn.Parameter(torch.zeros(3 * hidden_size))
        bound = 1 / math.sqrt(window * input_size)  # nn.Linear's initialisation
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, state: Any = None):
        """x (batch, time, input); state None, c (1, batch, hidden), or (c, x_prev (1, batch, input))."""
        states = (state,) if isinstance(state, torch.Tensor) else state
        c0 = None if states is None else wide(states[0][0])
        source = x
        if self.window == 2:
            prev = x.new_zeros(x.shape[0], 1, x.shape[2]) if states is None else states[1][0][:, None].to(x.dtype)
            source = torch.cat([torch.cat([prev, x[:, :-1]], dim=1), x], dim=-1)
        z, f, o = wide(F.linear(source, self.weight, self.bias)).chunk(3, dim=-1)
        f, z = torch.sigmoid(f), torch.tanh(z)
        if x.shape[1] == 1 and c0 is not None:
            c = self.step(z[:, 0], f[:, 0], c0)[:, None]
        else:
            c = linear_scan(f, (1 - f) * z, c0)
        h = torch.sigmoid(o) * c
        final = c[:, -1][None]
        return h, ((final, x[:, -1][None]) if self.window == 2 else final)

    @staticmethod
    def step(z: torch.Tensor, f: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """One time step of fo-pooling: the scan's reference."""
        return f * c + (1 - f) * z


class DroppedQRNNLayer(WeightDropped, QRNNLayer):
    pass


@dataclasses.dataclass(kw_only=True)
class QRNNSettings(RecurrentSettings):
    window: int = setting(2, window_width, structural=True)  # the first layer's; the others use 1 (AWD-LSTM)


class QRNN(Cell):
    Settings = QRNNSettings

    @classmethod
    def build(cls, settings: QRNNSettings, input_size: int) -> nn.Module:
        def layer(i: int, width_in: int, width: int) -> nn.Module:
            module = DroppedQRNNLayer(width_in, width, settings.window if i == 0 else 1)
            module.weight_drop = settings.weight_drop
            return module

        return stack(settings, input_size, layer)
