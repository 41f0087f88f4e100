"""Layers run one by one, and the settings of a cell made of such layers.

`LayerSettings` declares what every layered cell has: its widths (one for every layer, or one per layer),
its depth and the dropout between layers. `RNNStack` runs the layers: for the library cells where one
multi-layer module cannot (a size per layer, as AWD-LSTM's 1150, 1150, then 400 to equal the tied embedding;
locked dropout between layers), and for every cell with no fused multi-layer kernel (qrnn, mogrifier,
mingru, minlstm).

The state is a flat tuple of per-layer tensors, each (1, batch, size) like a library module's: (h0, c0, h1,
c1, ...) for LSTM, (h0, h1, ...) for GRU; a layer holds as many as its `parts` say. Batch is on dimension 1
of every tensor, so carrying the state (stream mode), saving it in a checkpoint and beam search's reordering
treat it exactly as they treat nn.LSTM's (h, c).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from rnnlm import checks
from rnnlm.errors import UserError
from rnnlm.models.regularisers import dropout
from rnnlm.models.settings import NetworkSettings, optional_rate, positive, setting


def layer_sizes(key: str, value: Any) -> None:
    """model.hidden_size: one size for every layer, or a non-empty list of one size per layer."""
    if not isinstance(value, Sequence) or isinstance(value, str):
        checks.integer(key, value)
        return
    if not value:
        raise UserError(f"{key}=[] gives no layer: give one size, or one per layer, e.g. [1150, 1150, 400].")
    for size in value:
        checks.integer(key, size)


@dataclasses.dataclass(kw_only=True)
class LayerSettings(NetworkSettings):
    hidden_size: int | list[int] = setting(200, layer_sizes, structural=True)
    num_layers: int = setting(2, positive, structural=True)
    dropout_hidden: float | None = setting(None, optional_rate)  # between layers; null: model.dropout

    @property
    def sizes(self) -> list[int]:
        return [self.hidden_size] * self.num_layers if isinstance(self.hidden_size, int) else list(self.hidden_size)

    @property
    def output_size(self) -> int:
        return self.sizes[-1]

    def shape(self) -> str:
        """lstm 2 x 200, or lstm 1150-1150-400 for one size per layer."""
        sizes = self.sizes
        if len(set(sizes)) == 1:
            return f"{self.cell} {len(sizes)} x {sizes[0]}"
        return f"{self.cell} {'-'.join(map(str, sizes))}"

    def check_relations(self) -> None:
        if not isinstance(self.hidden_size, int) and len(self.hidden_size) != self.num_layers:
            raise UserError(
                f"model.hidden_size={list(self.hidden_size)} gives {len(self.hidden_size)} layer sizes but "
                f"model.num_layers={self.num_layers}: set model.num_layers={len(self.hidden_size)}."
            )
        super().check_relations()

    def hidden_dropout(self) -> float:
        return self.rate(self.dropout_hidden) if self.num_layers > 1 else 0.0


class RNNStack(nn.Module):
    def __init__(self, layers: Sequence[nn.Module], parts: Sequence[int], dropout_hidden: float, locked: bool) -> None:
        """`parts`: the tensors in each layer's state (2 for LSTM's h and c)."""
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.parts = list(parts)
        self.dropout_hidden, self.locked = dropout_hidden, locked

    def forward(self, x: torch.Tensor, hidden: tuple[torch.Tensor, ...] | None = None):
        if isinstance(hidden, torch.Tensor):  # one layer's one-tensor state, as a checkpoint restores it
            hidden = (hidden,)
        states: list[torch.Tensor] = []
        last, start = len(self.layers) - 1, 0
        for i, (layer, parts) in enumerate(zip(self.layers, self.parts)):
            h = None
            if hidden is not None:
                h = hidden[start] if parts == 1 else tuple(hidden[start : start + parts])
            start += parts
            x, h = layer(x, h)
            states += h if isinstance(h, tuple) else [h]
            if i < last:
                x = dropout(x, self.dropout_hidden, self.training, self.locked)
        return x, tuple(states)


def stack(settings: LayerSettings, input_size: int, layer: Callable[[int, int, int], nn.Module],
          parts: int | None = None) -> RNNStack:  # fmt: skip
    """An RNNStack of `layer(index, input width, width)` for each of the settings' widths; the tensors in each
    layer's state are `parts`, or else what each layer module says (its `parts`, default 1)."""
    widths = [input_size, *settings.sizes]
    layers = [layer(i, widths[i], widths[i + 1]) for i in range(len(settings.sizes))]
    counts = [parts or getattr(m, "parts", 1) for m in layers]
    return RNNStack(layers, counts, settings.hidden_dropout(), settings.locked_dropout)
