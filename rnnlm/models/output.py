"""The adaptive softmax output layer (`model.output=adaptive`), for vocabularies of tens of thousands of words.

torch's nn.AdaptiveLogSoftmaxWithLoss (Grave et al. 2017) scores the most frequent words in a head and the
rest in clusters behind it, each cluster a smaller product reached only by the tokens that need it; it
wants the classes sorted by frequency. rnnlm's vocabularies are not (specials first, BPE by merges), so
this layer keeps the training frequency order as buffers (`order`: rank -> token id, `rank`: token id ->
rank, set by `set_frequencies` and saved with the weights) and translates at its edges: targets into ranks,
log-probabilities back into token-id order. Everything outside sees token ids only.

Tying (`model.tie_weights=true`) shares what the sizes allow: the head's rows of the shortlisted words are
those words' embedding rows, and so are a cluster's output rows where its projection is as wide as the
embedding (`model.adaptive_div_value=1`); narrower clusters keep their own. The head and tails are swapped
for modules that read the embedding, so the library module's own forward, log_prob and loss run unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnlm.errors import UserError

OUTPUTS = ("full", "adaptive")
SMALLEST_VOCAB = 1000  # below this a full softmax is cheap, and clusters of a few words learn nothing


def coverage_cutoffs(counts: np.ndarray, coverage: Sequence[float]) -> list[int]:
    """Cluster bounds from training counts: for each fraction, how many of the most frequent tokens cover that
    share of the training targets (`[0.9, 0.95, 0.99]` -> the head holds the words of 90% of the text, ...)."""
    share = np.cumsum(np.sort(np.asarray(counts, dtype=np.float64))[::-1]) / max(float(np.sum(counts)), 1.0)
    cutoffs = sorted({int(np.searchsorted(share, c) + 1) for c in coverage})
    return [c for c in cutoffs if 0 < c < len(counts) - 1]


def check_cutoffs(cutoffs: Sequence[int], vocab_size: int) -> list[int]:
    """Explicit `model.adaptive_cutoffs` against the vocabulary (one sentence each)."""
    if vocab_size < SMALLEST_VOCAB:
        raise UserError(
            f"model.output=adaptive needs a large vocabulary (it pays off from tens of thousands of tokens); this "
            f"one has {vocab_size:,}: use model.output=full."
        )
    cutoffs = list(cutoffs)
    if not cutoffs or cutoffs != sorted(set(cutoffs)) or cutoffs[0] < 1 or cutoffs[-1] > vocab_size - 2:
        raise UserError(
            f"model.adaptive_cutoffs={cutoffs} must be increasing token counts between 1 and the vocabulary size "
            f"less 2 ({vocab_size - 2:,}): e.g. [{vocab_size // 10}, {vocab_size // 2}], or null for cutoffs from "
            "model.adaptive_coverage."
        )
    return cutoffs


class AdaptiveOutput(nn.Module):
    def __init__(
        self,
        in_features: int,
        vocab_size: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        tied: nn.Embedding | None = None,
    ) -> None:
        super().__init__()
        cutoffs = check_cutoffs(cutoffs, vocab_size)
        narrowest = int(in_features // div_value ** len(cutoffs))
        if narrowest < 1:  # the library would make a 0-wide projection: a cluster that learns nothing
            raise UserError(
                f"model.adaptive_div_value={div_value:g} leaves the last of {len(cutoffs)} clusters no width "
                f"({in_features} features / {div_value:g}^{len(cutoffs)} < 1): lower model.adaptive_div_value, "
                "or ask for fewer clusters (model.adaptive_cutoffs or model.adaptive_coverage)."
            )
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(in_features, vocab_size, cutoffs, div_value, head_bias=True)
        self.register_buffer("order", torch.arange(vocab_size))  # rank -> token id, most frequent first
        self.register_buffer("rank", torch.arange(vocab_size))  # token id -> rank
        if tied is not None:
            self._tie(tied)

    def _tie(self, embedding: nn.Embedding) -> None:
        sm = self.softmax
        sm.head = TiedRows(embedding, self, 0, sm.shortlist_size, extra_rows=sm.n_clusters, bias=True)
        for i, (start, stop) in enumerate(zip(sm.cutoffs[:-1], sm.cutoffs[1:])):
            projection, out = sm.tail[i]
            if out.in_features == embedding.embedding_dim:
                sm.tail[i] = nn.Sequential(projection, TiedRows(embedding, self, start, stop))

    @property
    def cutoffs(self) -> list[int]:
        return self.softmax.cutoffs[:-1]

    @torch.no_grad()
    def set_frequencies(self, counts: np.ndarray) -> None:
        """Sort the classes by training frequency (ties by token id): the order the clusters assume."""
        order = torch.from_numpy(np.argsort(-np.asarray(counts, dtype=np.int64), kind="stable"))
        self.order.copy_(order)
        self.rank[order] = torch.arange(len(order), device=self.rank.device)

    def nll(self, features: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> torch.Tensor:
        """Summed NLL (fp32) of `targets` (N,) given `features` (N, D); rows whose target is `ignore_index`
        count for nothing. The library's forward, with its products in the autocast dtype (bf16) and every
        log-softmax and sum in fp32 (the library's own stops on bf16 log-probabilities under autocast)."""
        keep = targets != ignore_index
        rows, ranks = features[keep], self.rank[targets[keep]]
        sm = self.softmax
        head = F.log_softmax(sm.head(rows).float(), dim=1)
        # each row's class in the head: its word in the shortlist, else its cluster's column
        cluster = torch.bucketize(ranks, torch.tensor(sm.cutoffs, device=ranks.device), right=True)
        in_head = torch.where(cluster == 0, ranks, sm.shortlist_size + cluster - 1)
        total = -head.gather(1, in_head[:, None]).sum()
        for i, start in enumerate(sm.cutoffs[:-1]):
            hit = (cluster == i + 1).nonzero().squeeze(1)
            if hit.numel():
                tail = F.log_softmax(sm.tail[i](rows.index_select(0, hit)).float(), dim=1)
                total = total - tail.gather(1, (ranks[hit] - start)[:, None]).sum()
        return total

    def log_probs(self, features: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., vocab) log-probabilities in token-id order (fp32), for sampling, search and scoring."""
        sm, flat = self.softmax, features.reshape(-1, features.shape[-1])
        head = F.log_softmax(sm.head(flat).float(), dim=1)
        parts = [head[:, : sm.shortlist_size]]
        for i in range(sm.n_clusters):
            cluster = head[:, sm.shortlist_size + i, None]
            parts.append(F.log_softmax(sm.tail[i](flat).float(), dim=1) + cluster)
        return torch.cat(parts, 1).index_select(1, self.rank).reshape(*features.shape[:-1], -1)


class TiedRows(nn.Module):
    """A linear layer whose rows for the tokens of ranks [start, stop) are those tokens' embedding rows,
    read at every call (so they train as the embedding does), plus `extra_rows` of its own (the head's
    cluster rows) and an optional bias. The embedding and the ranks are referenced, not owned."""

    def __init__(
        self, embedding: nn.Embedding, output: AdaptiveOutput, start: int, stop: int, extra_rows: int = 0, bias=False
    ) -> None:
        super().__init__()
        object.__setattr__(self, "_embedding", embedding)  # unregistered: its owner keeps its state
        object.__setattr__(self, "_output", output)
        self.start, self.stop = start, stop
        width = embedding.embedding_dim
        self.extra = nn.Parameter(torch.empty(extra_rows, width)) if extra_rows else None
        self.bias = nn.Parameter(torch.zeros(stop - start + extra_rows)) if bias else None
        if self.extra is not None:
            nn.init.uniform_(self.extra, -0.1, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self._embedding.weight.index_select(0, self._output.order[self.start : self.stop])
        if self.extra is not None:
            weight = torch.cat([weight, self.extra])
        return F.linear(x, weight, self.bias)
