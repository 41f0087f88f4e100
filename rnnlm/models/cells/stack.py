"""RNNStack: recurrent layers run one by one, for what one multi-layer library module cannot do: a size per
layer (AWD-LSTM: 1150, 1150, then 400 to equal the tied embedding) and locked dropout between layers.

Each layer is a single-layer library module (nn.RNN/GRU/LSTM, or the vanilla cell), so each still runs the
fused kernel, with its own weight drop. The state is a flat tuple of per-layer tensors, each (1, batch, size)
like a library module's: (h0, c0, h1, c1, ...) for LSTM, (h0, h1, ...) otherwise. Batch is on dimension 1 of
every tensor, so carrying the state (stream mode), saving it in a checkpoint and beam search's reordering
treat it exactly as they treat nn.LSTM's (h, c).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rnnlm.models.regularisers import dropout


class RNNStack(nn.Module):
    def __init__(self, layers: Sequence[nn.Module], parts: int, dropout_hidden: float, locked: bool) -> None:
        """`parts`: tensors per layer in the state (2 for LSTM's h and c)."""
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.parts, self.dropout_hidden, self.locked = parts, dropout_hidden, locked

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, ...] | None = None):
        if isinstance(hidden, torch.Tensor):  # one GRU/RNN layer's state, as a checkpoint restores it
            hidden = (hidden,)
        states: list[torch.Tensor] = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = None
            if hidden is not None:
                h = hidden[i * self.parts] if self.parts == 1 else tuple(hidden[i * 2 : i * 2 + 2])
            x, h = layer(x, h)
            states += h if isinstance(h, tuple) else [h]
            if i < last:
                x = dropout(x, self.dropout_hidden, self.training, self.locked)
        return x, tuple(states)
