"""AWD-LSTM's regularisers (Merity et al. 2017, "Regularizing and Optimizing LSTM Language Models").

- embedding dropout: whole word types dropped from the embedding matrix for a batch (every occurrence of a
  dropped word reads zeros), the rest rescaled by 1 / (1 - p);
- locked (variational) dropout: one mask per sequence and feature, shared by every time step;
- weight drop: DropConnect on the hidden-to-hidden matrices (a QRNN's gate weights), one mask per batch,
  applied to the weights the library's fused RNN kernel reads (torch.func.functional_call), so the cuDNN /
  oneDNN kernel still runs;
- AR / TAR: penalties on the last layer's activations (their size, and their change from step to step).

Every function is the identity in eval mode or at rate 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


def embedding_dropout(embedding: nn.Embedding, words: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """embedding(words) with each word type of the vocabulary kept w.p. 1 - p (the same choice everywhere in
    the batch). Masking the looked-up rows equals looking up in a masked matrix, without scaling all of it."""
    vectors = embedding(words)
    if not training or p == 0.0:
        return vectors
    keep = torch.empty(embedding.num_embeddings, device=vectors.device, dtype=vectors.dtype).bernoulli_(1 - p)
    return vectors * (keep / (1 - p))[words].unsqueeze(-1)


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """x (batch, time, features): one dropout mask per row and feature, the same at every time step."""
    if not training or p == 0.0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p)
    return x * (mask / (1 - p))


def dropout(x: torch.Tensor, p: float, training: bool, locked: bool) -> torch.Tensor:
    """Locked (one mask per sequence) or plain dropout: the choice model.locked_dropout makes everywhere."""
    return locked_dropout(x, p, training) if locked else F.dropout(x, p, training)


def hidden_weight_names(rnn: nn.Module) -> list[str]:
    """The matrices weight drop masks: the hidden-to-hidden ones of an nn.RNN/GRU/LSTM (weight_hh_l0, ...), or
    those a module names by its `dropped_weights` prefix (the QRNN's gate weights, as AWD-LSTM drops them)."""
    prefix = getattr(rnn, "dropped_weights", "weight_hh")
    return [name for name, _ in rnn.named_parameters() if name.startswith(prefix)]


def run_weight_dropped(rnn: nn.Module, x: torch.Tensor, hidden, p: float, training: bool, **kwargs):
    """rnn(x, hidden, **kwargs) with DropConnect on its hidden-to-hidden weights: the parameters stay the
    module's own (gradients reach them through the mask; checkpoints keep their names), only this call reads
    dropped copies."""
    if not training or p == 0.0:
        return rnn(x, hidden, **kwargs)
    dropped = {name: F.dropout(getattr(rnn, name), p, True) for name in hidden_weight_names(rnn)}
    return functional_call(rnn, dropped, (x, hidden), kwargs)


def activation_penalty(
    raw: torch.Tensor, dropped: torch.Tensor, mask: torch.Tensor, ar: float, tar: float
) -> torch.Tensor:
    """AR: ar * mean of dropped^2 (the last layer's output after its dropout); TAR: tar * mean of
    (raw_t - raw_{t-1})^2 (before it). Means over the features of the target positions (mask (batch, time),
    pads excluded), as AWD-LSTM's means over a padless stream."""
    total = raw.new_zeros((), dtype=torch.float32)
    if ar:
        total = total + ar * (dropped.float().pow(2).sum(-1) * mask).sum() / (mask.sum() * dropped.shape[-1])
    if tar and raw.shape[1] > 1:
        pairs = mask[:, 1:] * mask[:, :-1]
        step = (raw[:, 1:] - raw[:, :-1]).float().pow(2).sum(-1)
        total = total + tar * (step * pairs).sum() / (pairs.sum().clamp(min=1) * raw.shape[-1])
    return total
