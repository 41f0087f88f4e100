"""RNNLanguageModel: embedding -> dropout -> RNN/GRU/LSTM -> dropout -> optional MLP head -> vocabulary.

The output layer is a full softmax (an nn.Linear, whose product the loss fuses: rnnlm.models.loss) or, for
large vocabularies, an adaptive softmax (rnnlm.models.output); `nll` and `scores` hide which.

The dropouts are pytorch/examples' one rate by default, or AWD-LSTM's set (rnnlm.models.regularisers): word
dropout on the embedding, locked dropout on the input, between layers and on the output, weight drop.

A plain nn.Module that knows nothing of Lightning, so it can be used and tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rnnlm import checks
from rnnlm.errors import UserError
from rnnlm.models.loss import linear_cross_entropy
from rnnlm.models.output import OUTPUTS, AdaptiveOutput
from rnnlm.models.regularisers import dropout, embedding_dropout, run_weight_dropped
from rnnlm.models.rnn_stack import RNNStack
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
        hidden_size: int | Sequence[int] = 200,
        num_layers: int = 2,
        dropout: float = 0.2,
        linear_hidden_sizes: Sequence[int] = (),
        tie_weights: bool = False,
        nonlinearity: str = "tanh",
        init_range: float | None = None,
        dropout_embed: float = 0.0,
        dropout_input: float | None = None,
        dropout_hidden: float | None = None,
        dropout_output: float | None = None,
        locked_dropout: bool = False,
        weight_drop: float = 0.0,
        output: str = "full",
        adaptive_cutoffs: Sequence[int] | None = None,
        adaptive_coverage: Sequence[float] = (0.9, 0.95, 0.99),
        adaptive_div_value: float = 4.0,
    ) -> None:
        """`adaptive_cutoffs`: the adaptive softmax's cluster bounds in the frequency order; None is allowed
        only before build() has counted the training tokens (it sets them from `adaptive_coverage`)."""
        super().__init__()
        check_model_args(cell, embed_size, hidden_size, num_layers, dropout, linear_hidden_sizes, tie_weights,
                         nonlinearity, init_range, dropout_embed, dropout_input, dropout_hidden, dropout_output,
                         locked_dropout, weight_drop, output, adaptive_cutoffs, adaptive_coverage,
                         adaptive_div_value)  # fmt: skip
        self.cell = cell
        sizes = layer_sizes(hidden_size, num_layers)
        # Each unset rate is model.dropout (the one rate of pytorch/examples); AWD-LSTM sets each apart.
        self.p_embed, self.p_input, self.p_output = (
            dropout_embed,
            _rate(dropout_input, dropout),
            _rate(dropout_output, dropout),
        )
        p_hidden = _rate(dropout_hidden, dropout) if len(sizes) > 1 else 0.0
        self.locked, self.weight_drop = locked_dropout, weight_drop
        self.embedding = nn.Embedding(vocab_size, embed_size)
        if locked_dropout or len(set(sizes)) > 1:
            self.rnn = RNNStack(cell, embed_size, sizes, nonlinearity, p_hidden, locked_dropout, weight_drop)
        else:  # one library module for all layers (its dropout between them is per element and time step)
            self.rnn = library_rnn(cell, embed_size, sizes[0], len(sizes), nonlinearity, p_hidden)
        head: list[nn.Module] = []
        width = sizes[-1]
        for size in linear_hidden_sizes:
            head += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.head = nn.Sequential(*head)
        if output == "adaptive":
            if adaptive_cutoffs is None:
                raise ValueError("adaptive_cutoffs: build() sets them from the training counts")
            tied = self.embedding if tie_weights else None
            self.decoder = AdaptiveOutput(width, vocab_size, adaptive_cutoffs, adaptive_div_value, tied)
        else:
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
        if self.adaptive:
            return  # the library's own init (and, tied, the embedding's rows)
        nn.init.zeros_(self.decoder.bias)
        if self.decoder.weight is not self.embedding.weight:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    @property
    def adaptive(self) -> bool:
        return isinstance(self.decoder, AdaptiveOutput)

    def _dropout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return dropout(x, p, self.training, self.locked)

    def encode(self, inputs: torch.Tensor, hidden: Hidden | None = None):
        """inputs (batch, time) -> (features for the output layer, final state, the last RNN layer's output,
        that output after its dropout); the last two are what AR/TAR penalise."""
        x = self._dropout(embedding_dropout(self.embedding, inputs, self.p_embed, self.training), self.p_input)
        if isinstance(self.rnn, RNNStack):
            out, hidden = self.rnn(x, hidden)
        else:
            out, hidden = run_weight_dropped(self.rnn, x, hidden, self.weight_drop, self.training)
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


def _rate(rate: float | None, default: float) -> float:
    return default if rate is None else rate


def layer_sizes(hidden_size: int | Sequence[int], num_layers: int) -> list[int]:
    """model.hidden_size: one size for every layer, or a list of one size per layer."""
    return [hidden_size] * num_layers if isinstance(hidden_size, int) else list(hidden_size)


def library_rnn(cell: str, input_size: int, size: int, layers: int, nonlinearity: str, dropout: float) -> nn.Module:
    if cell == "lstm":
        return nn.LSTM(input_size, size, layers, batch_first=True, dropout=dropout)
    if cell == "gru":
        return nn.GRU(input_size, size, layers, batch_first=True, dropout=dropout)
    if cell == "rnn":
        return nn.RNN(input_size, size, layers, nonlinearity=nonlinearity, batch_first=True, dropout=dropout)
    return VanillaRNN(input_size, size, layers, nonlinearity, dropout)


def check_model_args(
    cell: str,
    embed_size: int,
    hidden_size: int | Sequence[int],
    num_layers: int,
    dropout: float,
    linear_hidden_sizes: Sequence[int],
    tie_weights: bool,
    nonlinearity: str,
    init_range: float | None = None,
    dropout_embed: float = 0.0,
    dropout_input: float | None = None,
    dropout_hidden: float | None = None,
    dropout_output: float | None = None,
    locked_dropout: bool = False,
    weight_drop: float = 0.0,
    output: str = "full",
    adaptive_cutoffs: Sequence[int] | None = None,
    adaptive_coverage: Sequence[float] = (0.9, 0.95, 0.99),
    adaptive_div_value: float = 4.0,
) -> None:
    """Reject impossible settings with one sentence that says what to change (the one place they are checked)."""
    if cell not in CELLS:
        raise UserError(f"model.cell={cell} is not a known cell: use one of {', '.join(CELLS)}.")
    if nonlinearity not in NONLINEARITIES:
        raise UserError(f"model.nonlinearity={nonlinearity} is not known: use tanh or relu.")
    if nonlinearity != "tanh" and cell in ("gru", "lstm"):
        raise UserError(f"model.nonlinearity applies to rnn and vanilla cells only: drop it for model={cell}.")
    for key, value in (("embed_size", embed_size), ("num_layers", num_layers)):
        checks.integer(f"model.{key}", value)
    _check_sizes("model.hidden_size", hidden_size, allow_int=True)
    if not isinstance(hidden_size, int) and len(hidden_size) != num_layers:
        raise UserError(
            f"model.hidden_size={list(hidden_size)} gives {len(hidden_size)} layer sizes but "
            f"model.num_layers={num_layers}: set model.num_layers={len(hidden_size)}."
        )
    _check_sizes("model.linear_hidden_sizes", linear_hidden_sizes)
    checks.number("model.dropout", dropout, 0.0, 1.0)
    checks.number("model.dropout_embed", dropout_embed, 0.0, 1.0)
    checks.number("model.weight_drop", weight_drop, 0.0, 1.0)
    for key, rate in (
        ("dropout_input", dropout_input),
        ("dropout_hidden", dropout_hidden),
        ("dropout_output", dropout_output),
    ):
        if rate is not None:
            checks.number(f"model.{key}", rate, 0.0, 1.0)
    checks.boolean("model.tie_weights", tie_weights)
    _check_output(output, adaptive_cutoffs, adaptive_coverage, adaptive_div_value)
    checks.boolean("model.locked_dropout", locked_dropout)
    if init_range is not None:
        checks.number("model.init_range", init_range, 0.0, None, low_open=True)
    last = linear_hidden_sizes[-1] if linear_hidden_sizes else layer_sizes(hidden_size, num_layers)[-1]
    if tie_weights and last != embed_size:
        source = (
            "the last of model.linear_hidden_sizes"
            if linear_hidden_sizes
            else "the last layer's size (model.hidden_size)"
        )
        raise UserError(
            f"model.tie_weights=true needs {source} ({last}) to equal model.embed_size ({embed_size}): "
            f"set model.embed_size={last}, make the last layer {embed_size} wide, or set model.tie_weights=false."
        )


def _check_output(output: str, cutoffs, coverage, div_value: float) -> None:
    """The output layer's settings, as far as they can be checked before the vocabulary is known."""
    if output not in OUTPUTS:
        raise UserError(f"model.output={output} is not known: use full (the default) or adaptive.")
    if output != "adaptive":
        return
    if cutoffs is not None:
        _check_sizes("model.adaptive_cutoffs", cutoffs)
        if not cutoffs or list(cutoffs) != sorted(set(cutoffs)):
            raise UserError(f"model.adaptive_cutoffs={list(cutoffs)} must be increasing token counts, e.g. "
                            "[2000, 10000], or null for cutoffs from model.adaptive_coverage.")  # fmt: skip
    if isinstance(coverage, (str, bytes)) or not isinstance(coverage, Sequence) or not coverage:
        raise UserError(f"model.adaptive_coverage={coverage!r} must be a list of fractions, e.g. [0.9, 0.95, 0.99].")
    for share in coverage:
        checks.number("model.adaptive_coverage", share, 0.0, 1.0, low_open=True)
    checks.number("model.adaptive_div_value", div_value, 1.0, None)


def _check_sizes(key: str, sizes: object, allow_int: bool = False) -> None:
    if allow_int and (not isinstance(sizes, Sequence) or isinstance(sizes, str)):
        checks.integer(key, sizes)
        return
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise UserError(f"{key}={sizes!r} must be a list of sizes, e.g. [256] (or []).")
    if allow_int and not sizes:
        raise UserError(f"{key}=[] gives no layer: give one size, or one per layer, e.g. [1150, 1150, 400].")
    for size in sizes:
        checks.integer(key, size)
