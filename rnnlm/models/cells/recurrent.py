"""The library's recurrent cells: rnn, gru and lstm (nn.RNN, nn.GRU, nn.LSTM: cuDNN on a GPU, oneDNN on a CPU).

One multi-layer library module runs every layer in one fused call; where it cannot (a size per layer, or
locked dropout between layers) the layers run one by one (stack.RNNStack). Either way each module is the
library's own class with AWD-LSTM's weight drop added to its forward, so parameter names, checkpoints and
the fused kernel stay the library's.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from torch import nn

from rnnlm.models.cells.base import Cell
from rnnlm.models.cells.stack import LayerSettings, stack
from rnnlm.models.regularisers import run_weight_dropped
from rnnlm.models.settings import one_of, rate, setting


@dataclasses.dataclass(kw_only=True)
class RecurrentSettings(LayerSettings):
    weight_drop: float = setting(0.0, rate)  # DropConnect on the hidden-to-hidden weights (AWD-LSTM's wdrop)


@dataclasses.dataclass(kw_only=True)
class ElmanSettings(RecurrentSettings):
    nonlinearity: str = setting("tanh", one_of("tanh", "relu"), structural=True)


class WeightDropped:
    """A library RNN module whose forward applies its `weight_drop` (rnnlm.models.regularisers) in training."""

    weight_drop: float = 0.0

    def forward(self, x, hidden=None, dropped: bool = False):
        if dropped or not self.training or self.weight_drop == 0.0:  # `dropped`: the call below, on dropped weights
            return super().forward(x, hidden)
        return run_weight_dropped(self, x, hidden, self.weight_drop, True, dropped=True)


class DroppedRNN(WeightDropped, nn.RNN):
    pass


class DroppedGRU(WeightDropped, nn.GRU):
    pass


class DroppedLSTM(WeightDropped, nn.LSTM):
    pass


class Recurrent(Cell):
    """A family of library cells: `module` is the weight-dropped library class, `parts` the state's tensors
    per layer."""

    Settings = RecurrentSettings
    module: ClassVar[type[nn.Module]]
    parts: ClassVar[int] = 1

    @classmethod
    def layer(cls, settings, input_size: int, size: int, layers: int, dropout: float) -> nn.Module:
        extra = {"nonlinearity": settings.nonlinearity} if hasattr(settings, "nonlinearity") else {}
        module = cls.module(input_size, size, layers, batch_first=True, dropout=dropout, **extra)
        module.weight_drop = settings.weight_drop
        return module

    @classmethod
    def build(cls, settings: RecurrentSettings, input_size: int) -> nn.Module:
        sizes = settings.sizes
        if settings.locked_dropout or len(set(sizes)) > 1:
            return stack(settings, input_size, lambda i, width_in, width: cls.layer(settings, width_in, width, 1, 0.0),
                         parts=cls.parts)  # fmt: skip
        # One library module for all layers (its dropout between them is per element and time step).
        return cls.layer(settings, input_size, sizes[0], len(sizes), settings.hidden_dropout())


class RNN(Recurrent):
    Settings = ElmanSettings
    module = DroppedRNN


class GRU(Recurrent):
    module = DroppedGRU


class LSTM(Recurrent):
    module = DroppedLSTM
    parts = 2
