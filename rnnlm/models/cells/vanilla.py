"""The seed notebook's hand-written Elman RNN, kept for teaching and as a reference.

h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), unrolled one time step at a time in Python. The
parameters carry nn.RNN's names and shapes, so a state_dict moves between the two unchanged and a test
can check that both compute the same thing. It is far slower than the fused nn.RNN: use model=rnn to train.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnlm.models.cells.recurrent import RNN, WeightDropped


class VanillaRNN(nn.Module):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        dropout: float = 0.0,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        self.hidden_size, self.num_layers, self.batch_first = hidden_size, num_layers, batch_first
        self.act = torch.tanh if nonlinearity == "tanh" else torch.relu
        self.dropout = nn.Dropout(dropout)
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(hidden_size, fan_in)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(hidden_size, hidden_size)))
            self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(hidden_size)))
            self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(hidden_size)))
        bound = hidden_size**-0.5  # nn.RNN's initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.batch_first:
            x = x.transpose(0, 1)  # (time, batch, features)
        steps, batch = x.shape[0], x.shape[1]
        if h0 is None:
            h0 = x.new_zeros(self.num_layers, batch, self.hidden_size)
        finals = []
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            b = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
            h, outputs = h0[layer], []
            for t in range(steps):
                h = self.act(x[t] @ w_ih.T + h @ w_hh.T + b)
                outputs.append(h)
            finals.append(h)
            x = torch.stack(outputs)
            if layer < self.num_layers - 1:
                x = self.dropout(x)  # between layers, as nn.RNN does
        if self.batch_first:
            x = x.transpose(0, 1)
        return x, torch.stack(finals)


class DroppedVanillaRNN(WeightDropped, VanillaRNN):
    pass


class Vanilla(RNN):
    """model=vanilla: the rnn cell's settings, this module instead of nn.RNN."""

    module = DroppedVanillaRNN
