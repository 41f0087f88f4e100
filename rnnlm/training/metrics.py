"""Corpus-level negative log-likelihood, the basis of exact perplexity.

Perplexity is exp(total NLL / total target tokens) over a whole split, never a mean of batch
perplexities (which over-weights short batches and is biased upwards by Jensen's inequality). Both sums
are metric states reduced by summation, so under DDP every rank's share is added before dividing.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric


class CorpusNLL(Metric):
    full_state_update = False
    higher_is_better = False

    def __init__(self) -> None:
        super().__init__()
        # float64: a PTB epoch sums ~10^6 values around 5, past where float32 keeps every digit we report.
        self.add_state("nll_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("tokens", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, nll_sum: torch.Tensor, tokens: int | torch.Tensor) -> None:
        self.nll_sum += nll_sum.detach().to(torch.float64)
        self.tokens += tokens

    def compute(self) -> torch.Tensor:
        """Mean NLL per target token (nats); exp() of it is the perplexity."""
        return self.nll_sum / self.tokens.clamp(min=1)
