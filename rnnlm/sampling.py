"""Drawing next tokens from a batch of distributions, fast on CPU as well as GPU.

torch.multinomial over a 10k vocabulary and a full sort for nucleus filtering cost ~0.2 s and ~0.3 s a
step for 1,000 rows on a 2-core CPU; inverse-CDF sampling (cumsum + searchsorted) and a partial top-k
do the same work in ~15-30 ms.
"""

from __future__ import annotations

import torch

NUCLEUS_CANDIDATES = 256  # top-p looks at this many best tokens first; rows needing more get a full sort


def _draw(probs: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """One index per row with P(i) proportional to probs[row, i] (rows need not sum to 1)."""
    cdf = probs.cumsum(-1)
    u = torch.rand(probs.shape[0], 1, generator=gen, device=probs.device, dtype=cdf.dtype) * cdf[:, -1:]
    # right=True: the first index whose cumulative mass exceeds u, so zero-probability entries never win.
    return torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[-1] - 1).squeeze(-1)


def _nucleus(vals: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero what lies outside the smallest prefix of the sorted `vals` (probabilities) holding top_p."""
    cum = vals.cumsum(-1)
    return vals.masked_fill(cum - vals >= top_p, 0.0)


def sample_tokens(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    gen: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample one token per row of `logits` (B, V), softmax(logits / temperature) filtered by top-k/top-p."""
    probs = (logits / temperature if temperature != 1.0 else logits).softmax(-1)
    if not top_k and top_p >= 1.0:
        return _draw(probs, gen)
    k = min(top_k or NUCLEUS_CANDIDATES, probs.shape[-1])
    vals, idx = probs.topk(k, dim=-1)  # sorted, best first
    if top_k:
        vals = vals / vals.sum(-1, keepdim=True)  # top-p then applies within the top-k distribution
    # Rows whose nucleus is wider than the candidates looked at are redone exactly below.
    wide = (vals.sum(-1) < top_p).nonzero().squeeze(1) if top_p < 1.0 and not top_k else None
    if top_p < 1.0:
        vals = _nucleus(vals, top_p)
    tokens = idx.gather(1, _draw(vals, gen)[:, None]).squeeze(1)
    if wide is not None:
        if len(wide):
            svals, sidx = probs[wide].sort(dim=-1, descending=True)
            tokens[wide] = sidx.gather(1, _draw(_nucleus(svals, top_p), gen)[:, None]).squeeze(1)
    return tokens
