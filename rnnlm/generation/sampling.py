"""Drawing next tokens from a batch of unnormalised distributions, fast on CPU as well as GPU.

torch.multinomial over a 10k vocabulary and a full sort for nucleus filtering cost ~0.2 s and ~0.3 s a
step for 1,000 rows on a 2-core CPU; inverse-CDF sampling (cumsum + searchsorted) and a partial top-k
do the same work in a few ms. Nothing here needs the rows to sum to one, which saves a pass.
"""

from __future__ import annotations

import torch

NUCLEUS_CANDIDATES = 256  # top-p looks at this many best tokens first; rows needing more get a full sort


def _draw(weights: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """One index per row with P(i) proportional to weights[row, i]."""
    cdf = weights.cumsum(-1)
    u = torch.rand(weights.shape[0], 1, generator=gen, device=weights.device, dtype=cdf.dtype) * cdf[:, -1:]
    # right=True: the first index whose cumulative mass exceeds u, so zero-weight entries never win.
    return torch.searchsorted(cdf, u, right=True).clamp_(max=weights.shape[-1] - 1).squeeze(-1)


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero what lies outside the smallest prefix of the sorted, normalised `probs` holding top_p."""
    cum = probs.cumsum(-1)
    return probs.masked_fill(cum - probs >= top_p, 0.0)


def sample_tokens(
    weights: torch.Tensor, top_k: int = 0, top_p: float = 1.0, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Sample one token per row of non-negative `weights` (B, V), filtered by top-k, then top-p."""
    if not top_k and top_p >= 1.0:
        return _draw(weights, gen)
    total = weights.sum(-1, keepdim=True)
    k = min(top_k or NUCLEUS_CANDIDATES, weights.shape[-1])
    vals, idx = weights.topk(k, dim=-1)  # sorted, best first
    # With top-k, top-p applies within the top-k distribution; without, within the whole one.
    vals = vals / (vals.sum(-1, keepdim=True) if top_k else total)
    # Rows whose nucleus is wider than the candidates looked at are redone exactly below.
    wide = (vals.sum(-1) < top_p).nonzero().squeeze(1) if top_p < 1.0 and not top_k else None
    if top_p < 1.0:
        vals = _nucleus(vals, top_p)
    tokens = idx.gather(1, _draw(vals, gen)[:, None]).squeeze(1)
    if wide is not None and len(wide):
        svals, sidx = weights[wide].sort(dim=-1, descending=True)
        tokens[wide] = sidx.gather(1, _draw(_nucleus(svals / total[wide], top_p), gen)[:, None]).squeeze(1)
    return tokens
