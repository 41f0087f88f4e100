"""RNNStack: recurrent layers run one by one, for what one multi-layer nn.LSTM cannot do: a size per layer
(AWD-LSTM: 1150, 1150, then 400 to equal the tied embedding) and locked dropout between layers.

Each layer is a single-layer library module (nn.RNN/GRU/LSTM, or the vanilla cell), so each still runs the
fused kernel, with weight drop applied per layer. The state is a flat tuple of per-layer tensors, each
(1, batch, size) like a library module's: (h0, c0, h1, c1, ...) for LSTM, (h0, h1, ...) otherwise. Batch is
on dimension 1 of every tensor, so carrying the state (stream mode), saving it in a checkpoint and beam
search's reordering treat it exactly as they treat nn.LSTM's (h, c).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rnnlm.models.regularisers import dropout, run_weight_dropped
from rnnlm.models.vanilla import VanillaRNN


def single_layer(cell: str, input_size: int, size: int, nonlinearity: str) -> nn.Module:
    if cell == "lstm":
        return nn.LSTM(input_size, size, 1, batch_first=True)
    if cell == "gru":
        return nn.GRU(input_size, size, 1, batch_first=True)
    if cell == "rnn":
        return nn.RNN(input_size, size, 1, nonlinearity=nonlinearity, batch_first=True)
    return VanillaRNN(input_size, size, 1, nonlinearity)


class RNNStack(nn.Module):
    def __init__(
        self,
        cell: str,
        input_size: int,
        sizes: Sequence[int],
        nonlinearity: str = "tanh",
        dropout_hidden: float = 0.0,
        locked: bool = True,
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__()
        widths = [input_size, *sizes]
        self.layers = nn.ModuleList(
            single_layer(cell, widths[i], widths[i + 1], nonlinearity) for i in range(len(sizes))
        )
        self.parts = 2 if cell == "lstm" else 1  # tensors per layer in the state
        self.dropout_hidden, self.locked, self.weight_drop = dropout_hidden, locked, weight_drop

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, ...] | None = None):
        if isinstance(hidden, torch.Tensor):  # one GRU/RNN layer's state, as a checkpoint restores it
            hidden = (hidden,)
        states: list[torch.Tensor] = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = None
            if hidden is not None:
                h = hidden[i * self.parts] if self.parts == 1 else tuple(hidden[i * 2 : i * 2 + 2])
            x, h = run_weight_dropped(layer, x, h, self.weight_drop, self.training)
            states += h if isinstance(h, tuple) else [h]
            if i < last:
                x = dropout(x, self.dropout_hidden, self.training, self.locked)
        return x, tuple(states)
