"""What a cell is to the network (rnnlm.models.rnn_lm): a stack of layers from the embedding's width to
`settings.output_size`, run over a whole window at once.

A cell class declares its settings (`Settings`, a dataclass subclassing NetworkSettings: rnnlm/models/settings.py)
and builds its module; the module's forward takes x (batch, time, input_size) and the previous state (None:
zeros) and returns (output (batch, time, output_size), final state). The state is a tensor or a tuple of
tensors, each with the batch on dimension 1: that is all stream mode (carrying and detaching it), checkpoints
(saving each rank's) and beam search (reordering it) need to know of it. AWD-LSTM's locked dropout between
layers and weight drop are the cell's to apply, from its settings; the network applies the rest.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from rnnlm.models.settings import NetworkSettings


class Cell(nn.Module):
    Settings: ClassVar[type[NetworkSettings]]

    @classmethod
    def build(cls, settings: Any, input_size: int) -> nn.Module:
        """The module that runs the layers: by default the cell itself (a library module for the cuDNN cells)."""
        return cls(settings, input_size)
