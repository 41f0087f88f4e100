"""RNNLanguageModel: embedding -> dropout -> a cell (RNN/GRU/LSTM, ...) -> dropout -> optional MLP head -> vocabulary.

Its settings are its cell's declared settings (rnnlm.models.cells, rnnlm.models.settings), checked there.

The output layer is a full softmax (an nn.Linear, whose product the loss fuses: rnnlm.models.loss) or, for
large vocabularies, an adaptive softmax (rnnlm.models.output); `nll` and `scores` hide which.

The dropouts are pytorch/examples' one rate by default, or AWD-LSTM's set (rnnlm.models.regularisers): word
dropout on the embedding, locked dropout on the input, between layers and on the output, weight drop.

A plain nn.Module that knows nothing of Lightning, so it can be used and tested on its own.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rnnlm.models.budget import fit_budget
from rnnlm.models.cells import cell_class, network_settings
from rnnlm.models.loss import linear_cross_entropy
from rnnlm.models.output import AdaptiveOutput
from rnnlm.models.regularisers import dropout, embedding_dropout

Hidden = torch.Tensor | tuple[torch.Tensor, ...]


def detach(hidden: Hidden) -> Hidden:
    """A state cut from the graph that made it (truncated BPTT: stream mode, adaptation's segments)."""
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()


class RNNLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, cell: str = "lstm", **settings: Any) -> None:
        """`settings`: model.* (rnnlm.models.settings and the cell's own); what is absent takes its default.
        `adaptive_cutoffs` may be None only before build() has counted the training tokens (it sets them);
        `params` (a parameter count) sets the widths (rnnlm.models.budget)."""
        super().__init__()
        self.settings = s = network_settings(fit_budget({"cell": cell, **settings}, vocab_size))
        self.p_embed, self.p_input, self.p_output = s.dropout_embed, s.rate(s.dropout_input), s.rate(s.dropout_output)
        self.locked = s.locked_dropout
        self.embedding = nn.Embedding(vocab_size, s.embed_size)
        self.rnn = cell_class(cell).build(s, s.embed_size)  # named rnn for every cell: checkpoints' keys
        head: list[nn.Module] = []
        width = s.output_size
        for size in s.linear_hidden_sizes:
            head += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(s.dropout)]
            width = size
        self.head = nn.Sequential(*head)
        if s.output == "adaptive":
            if s.adaptive_cutoffs is None:
                raise ValueError("adaptive_cutoffs: build() sets them from the training counts")
            tied = self.embedding if s.tie_weights else None
            self.decoder = AdaptiveOutput(width, vocab_size, s.adaptive_cutoffs, s.adaptive_div_value, tied)
        else:
            self.decoder = nn.Linear(width, vocab_size)
            if s.tie_weights:
                self.decoder.weight = self.embedding.weight
        self._init_weights(s.init_range)

    def _init_weights(self, init_range: float | None) -> None:
        if init_range is not None:
            # Zaremba et al. 2014: every parameter, biases included, uniform in [-r, r].
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range)
            return
        # pytorch/examples' word_language_model: small uniform embedding/decoder, the RNN's own default
        # (uniform in +-1/sqrt(hidden_size)).
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        if self.adaptive:
            return  # the library's own init (and, tied, the embedding's rows)
        nn.init.zeros_(self.decoder.bias)
        if self.decoder.weight is not self.embedding.weight:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    @property
    def cell(self) -> str:
        return self.settings.cell

    @property
    def adaptive(self) -> bool:
        return isinstance(self.decoder, AdaptiveOutput)

    def _dropout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return dropout(x, p, self.training, self.locked)

    def encode(self, inputs: torch.Tensor, hidden: Hidden | None = None):
        """inputs (batch, time) -> (features for the output layer, final state, the last RNN layer's output,
        that output after its dropout); the last two are what AR/TAR penalise."""
        x = self._dropout(embedding_dropout(self.embedding, inputs, self.p_embed, self.training), self.p_input)
        out, hidden = self.rnn(x, hidden)
        dropped = self._dropout(out, self.p_output)
        return self.head(dropped), hidden, out, dropped

    def features(self, inputs: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """inputs (batch, time) token ids -> what the output layer reads (batch, time, width), final state."""
        features, hidden, _, _ = self.encode(inputs, hidden)
        return features, hidden

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """(..., width) -> (..., vocab) scores whose softmax is the model's distribution: the full softmax's
        logits, or the adaptive softmax's log-probabilities (equal to logits up to a constant per row)."""
        return self.decoder.log_probs(features) if self.adaptive else self.decoder(features)

    def nll(self, features: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> torch.Tensor:
        """Summed NLL (fp32) of `targets` (N,) given `features` (N, width); `ignore_index` rows count for nothing."""
        if self.adaptive:
            return self.decoder.nll(features, targets, ignore_index)
        return linear_cross_entropy(features, self.decoder.weight, self.decoder.bias, targets, ignore_index)

    def forward(self, inputs: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        """inputs (batch, time) token ids -> scores (batch, time, vocab) and the final hidden state."""
        features, hidden = self.features(inputs, hidden)
        return self.scores(features), hidden
