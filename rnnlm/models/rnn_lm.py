"""RNNLanguageModel: embedding -> dropout -> RNN/GRU/LSTM -> dropout -> optional MLP head -> vocabulary.

A plain nn.Module that knows nothing of Lightning, so it can be used and tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rnnlm import checks
from rnnlm.errors import UserError
from rnnlm.models.vanilla import VanillaRNN

CELLS = ("rnn", "gru", "lstm", "vanilla")
NONLINEARITIES = ("tanh", "relu")

Hidden = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class RNNLanguageModel(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        embed_size: int = 200,
        hidden_size: int = 200,
        num_layers: int = 2,
        dropout: float = 0.2,
        linear_hidden_sizes: Sequence[int] = (),
        tie_weights: bool = False,
        nonlinearity: str = "tanh",
        init_range: float | None = None,
    ) -> None:
        super().__init__()
        check_model_args(cell, embed_size, hidden_size, num_layers, dropout, linear_hidden_sizes,
                         tie_weights, nonlinearity, init_range)  # fmt: skip
        self.cell = cell
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.drop = nn.Dropout(dropout)
        rnn_dropout = dropout if num_layers > 1 else 0.0  # PyTorch warns about dropout on a single layer
        if cell == "lstm":
            self.rnn = nn.LSTM(embed_size, hidden_size, num_layers, batch_first=True, dropout=rnn_dropout)
        elif cell == "gru":
            self.rnn = nn.GRU(embed_size, hidden_size, num_layers, batch_first=True, dropout=rnn_dropout)
        elif cell == "rnn":
            self.rnn = nn.RNN(embed_size, hidden_size, num_layers, nonlinearity=nonlinearity, batch_first=True,
                              dropout=rnn_dropout)  # fmt: skip
        else:
            self.rnn = VanillaRNN(embed_size, hidden_size, num_layers, nonlinearity, rnn_dropout)
        head: list[nn.Module] = []
        width = hidden_size
        for size in linear_hidden_sizes:
            head += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.head = nn.Sequential(*head)
        self.decoder = nn.Linear(width, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        self._init_weights(init_range)

    def _init_weights(self, init_range: float | None) -> None:
        if init_range is not None:
            # Zaremba et al. 2014: every parameter, biases included, uniform in [-r, r].
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range)
            return
        # pytorch/examples' word_language_model: small uniform embedding/decoder, the RNN's own default
        # (uniform in +-1/sqrt(hidden_size)).
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if self.decoder.weight is not self.embedding.weight:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def features(self, inputs: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """inputs (batch, time) token ids -> what the output layer reads (batch, time, width), final state."""
        out, hidden = self.rnn(self.drop(self.embedding(inputs)), hidden)
        return self.head(self.drop(out)), hidden

    def forward(self, inputs: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """inputs (batch, time) token ids -> logits (batch, time, vocab) and the final hidden state."""
        features, hidden = self.features(inputs, hidden)
        return self.decoder(features), hidden


def check_model_args(
    cell: str,
    embed_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    linear_hidden_sizes: Sequence[int],
    tie_weights: bool,
    nonlinearity: str,
    init_range: float | None = None,
) -> None:
    """Reject impossible settings with one sentence that says what to change (the one place they are checked)."""
    if cell not in CELLS:
        raise UserError(f"model.cell={cell} is not a known cell: use one of {', '.join(CELLS)}.")
    if nonlinearity not in NONLINEARITIES:
        raise UserError(f"model.nonlinearity={nonlinearity} is not known: use tanh or relu.")
    if nonlinearity != "tanh" and cell in ("gru", "lstm"):
        raise UserError(f"model.nonlinearity applies to rnn and vanilla cells only: drop it for model={cell}.")
    for key, value in (("embed_size", embed_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        checks.integer(f"model.{key}", value)
    if isinstance(linear_hidden_sizes, (str, bytes)) or not isinstance(linear_hidden_sizes, Sequence):
        raise UserError(
            f"model.linear_hidden_sizes={linear_hidden_sizes!r} must be a list of sizes, e.g. [256] (or [])."
        )
    for size in linear_hidden_sizes:
        checks.integer("model.linear_hidden_sizes", size)
    checks.number("model.dropout", dropout, 0.0, 1.0)
    checks.boolean("model.tie_weights", tie_weights)
    if init_range is not None:
        checks.number("model.init_range", init_range, 0.0, None, low_open=True)
    last = linear_hidden_sizes[-1] if linear_hidden_sizes else hidden_size
    if tie_weights and last != embed_size:
        source = "the last of model.linear_hidden_sizes" if linear_hidden_sizes else "model.hidden_size"
        raise UserError(
            f"model.tie_weights=true needs {source} ({last}) to equal model.embed_size ({embed_size}): "
            f"set model.embed_size={last} or model.tie_weights=false."
        )
