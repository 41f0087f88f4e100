"""The Mogrifier LSTM (Melis, Kočiský and Blunsom 2020): before each LSTM step the input and the previous
output gate each other for r rounds, then an ordinary LSTM step reads both:

    round i odd:   x <- 2 sigmoid(Q_i h) * x        round i even:  h <- 2 sigmoid(R_i x) * h

Q_i and R_i are full matrices or, with `rank`, products of two thin ones (Q = Q_a Q_b). With 0 rounds the
layer is an LSTM: its LSTM weights carry nn.LSTM's names and shapes (weight_ih_l0, weight_hh_l0, bias_ih_l0,
bias_hh_l0), so a state_dict moves between the two and weight drop masks weight_hh as for model=lstm.

The rounds read the state, so the layer steps through time; each step is one fused LSTM-cell call plus four
small ops per round, and the rounds' products cannot be batched over time. Defaults are the published PTB recipe's
(deepmind/lamb, experiment/mogrifier: 5 rounds; it uses rank 84 at 24M parameters).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from rnnlm import checks
from rnnlm.models.cells.base import Cell
from rnnlm.models.cells.recurrent import RecurrentSettings, WeightDropped
from rnnlm.models.cells.stack import stack
from rnnlm.models.settings import setting


def rounds(key: str, value: Any) -> None:
    checks.integer(key, value, minimum=0)


def optional_rank(key: str, value: Any) -> None:
    checks.integer(key, value, optional=True)


def _gate(in_features: int, out_features: int, rank: int | None) -> nn.Module:
    if rank is None or rank >= min(in_features, out_features):
        return nn.Linear(in_features, out_features, bias=False)
    return nn.Sequential(nn.Linear(in_features, rank, bias=False), nn.Linear(rank, out_features, bias=False))


class MogrifierLayer(nn.Module):
    parts = 2  # h and c, as nn.LSTM's

    def __init__(self, input_size: int, hidden_size: int, rounds: int, rank: int | None) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh_l0 = nn.Parameter(torch.empty(4 * hidden_size))
        # Odd rounds (index 0, 2, ...) map h to a gate on x; even rounds map x to a gate on h.
        self.rounds = nn.ModuleList(
            _gate(hidden_size, input_size, rank) if i % 2 == 0 else _gate(input_size, hidden_size, rank)
            for i in range(rounds)
        )
        bound = 1 / math.sqrt(hidden_size)  # nn.LSTM's initialisation, for the rounds too
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def mogrify(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for i, gate in enumerate(self.rounds):
            if i % 2 == 0:
                x = x * torch.sigmoid(gate(h)).mul(2)
            else:
                h = h * torch.sigmoid(gate(x)).mul(2)
        return x, h

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x (batch, time, input), state (h, c) each (1, batch, hidden) or None -> output, (h, c)."""
        if state is None:
            h = c = x.new_zeros(x.shape[0], self.hidden_size)
        else:
            h, c = state[0][0], state[1][0]
        weights = (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0)
        outputs = []
        for t in range(x.shape[1]):
            xt, h = self.mogrify(x[:, t], h)
            h, c = torch.lstm_cell(xt, (h, c), *weights)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h[None], c[None])


class DroppedMogrifierLayer(WeightDropped, MogrifierLayer):
    pass


@dataclasses.dataclass(kw_only=True)
class MogrifierSettings(RecurrentSettings):
    rounds: int = setting(5, rounds, structural=True)  # 0: an LSTM
    rank: int | None = setting(None, optional_rank, structural=True)  # null: full matrices


class Mogrifier(Cell):
    Settings = MogrifierSettings

    @classmethod
    def build(cls, settings: MogrifierSettings, input_size: int) -> nn.Module:
        def layer(i: int, width_in: int, width: int) -> nn.Module:
            module = DroppedMogrifierLayer(width_in, width, settings.rounds, settings.rank)
            module.weight_drop = settings.weight_drop
            return module

        return stack(settings, input_size, layer)
