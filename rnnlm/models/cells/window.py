"""The fixed-window neural language model (Bengio et al. 2003, "A Neural Probabilistic Language Model") as a cell:
the feed-forward baseline the recurrent cells improved on.

The next word is predicted from the last model.context input tokens alone (the current one included: context 1 is
a bigram model). With x_t the concatenation of their embeddings, oldest first, the paper's network is

    y_t = b + W x_t + U tanh(d + H x_t)

H and d are this cell's one Linear (model.hidden_size wide); U and b are the network's ordinary output layer. W, the
paper's "direct connections" from the embeddings to the output (model.direct=true), needs no output path of its
own: the cell then outputs [tanh(d + H x_t), x_t], hidden_size + context x embed_size wide, so the output layer's
one matrix product over it is U tanh(...) + W x_t. Without them the output is tanh(d + H x_t), as tying needs.

A window at t reads inputs t - context + 1 .. t, however the tokens arrive: a whole window at once, window by
window with the state, or one token at a time (generation). The state is the last context - 1 inputs (their
embeddings after the network's input dropout), (context - 1, batch, embed_size), batch on dimension 1 like every
cell's (base.py); None is zeros, so in sentence mode the positions before <sos> are zero vectors (the model learns
what "nothing there" means), while in stream mode the window reaches back across sentence boundaries. Context 1
keeps an empty (0, batch, embed_size) state, carried, saved and reordered like any other.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from rnnlm.errors import UserError
from rnnlm.models.cells.base import Cell
from rnnlm.models.settings import NetworkSettings, flag, positive, setting


@dataclasses.dataclass(kw_only=True)
class WindowSettings(NetworkSettings):
    context: int = setting(5, positive, structural=True)  # input tokens seen, the current one included (1: bigram)
    hidden_size: int = setting(200, positive, structural=True)  # the tanh layer's width
    direct: bool = setting(False, flag, structural=True)  # the paper's direct connections from the window to the output

    @property
    def output_size(self) -> int:
        return self.hidden_size + (self.context * self.embed_size if self.direct else 0)

    def shape(self) -> str:
        """window 5 x 200 -> 200, the inputs' embeddings to the tanh layer; (direct): with direct connections."""
        direct = " (direct)" if self.direct else ""
        return f"{self.cell} {self.context} x {self.embed_size} -> {self.hidden_size}{direct}"

    def check_relations(self) -> None:
        # With direct connections the output layer reads the window too, so it is never embed_size wide; the
        # generic check would blame model.hidden_size, which no value of it can fix.
        if self.tie_weights and self.direct and not self.linear_hidden_sizes:
            raise UserError(
                f"model.tie_weights=true needs the output layer to read model.embed_size ({self.embed_size}) "
                f"features, but model.direct=true gives it the tanh layer and the window ({self.output_size}): set "
                "model.direct=false or model.tie_weights=false."
            )
        super().check_relations()


class WindowNetwork(nn.Module):
    def __init__(self, settings: WindowSettings, input_size: int) -> None:
        super().__init__()
        self.context, self.direct = settings.context, settings.direct
        self.hidden = nn.Linear(settings.context * input_size, settings.hidden_size)  # H and d

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (batch, time, width); state: the previous context - 1 inputs (context - 1, batch, width), or None."""
        batch, time, width = x.shape
        slots = self.context - 1
        # Under autocast x and a state from an fp32 step (or a checkpoint) may differ in dtype.
        before = x.new_zeros(batch, slots, width) if state is None else state.transpose(0, 1).to(x.dtype)
        full = torch.cat([before, x], 1)
        windows = full.unfold(1, self.context, 1).transpose(2, 3).flatten(2)  # (batch, time, context x width)
        h = torch.tanh(self.hidden(windows))
        out = torch.cat([h, windows.to(h.dtype)], -1) if self.direct else h
        # Its own memory: a view would keep (and a checkpoint would save) the whole window.
        return out, full[:, time:].transpose(0, 1).contiguous()


class Window(Cell):
    Settings = WindowSettings

    @classmethod
    def build(cls, settings: WindowSettings, input_size: int) -> nn.Module:
        return WindowNetwork(settings, input_size)
