"""The continuous cache pointer (Grave et al. 2017, "Improving Neural Language Models with a Continuous Cache"):
remember the last `window` states with the word that followed each, and mix

    p(w) = (1 - lam) * p_model(w) + lam * p_cache(w),   p_cache(w) = sum over remembered i with x_{i+1} = w of
                                                         softmax_i(theta * h_t . h_i)

No training: the model's pass gives each position's state h_t (rnnlm.adapt.reading, `key`) and its probability of
the word that came; the mixture is computed afterwards in chunks of positions, each seeing only the states before
it, so tuning theta, lam and the window costs no second pass of the model. The cache starts empty: the first token
is scored by the model alone, and the next ones by a cache that holds what was read so far.
"""

from __future__ import annotations

import math

import numpy as np
import torch

CHUNK = 1024  # positions whose mixture is computed at once (memory: CHUNK x (window + CHUNK) scores)


def cache_probs(keys: torch.Tensor, targets: torch.Tensor, window: int, theta: float) -> torch.Tensor:
    """p_cache(target_t) for every position t (fp64), and 0 where the cache is empty. keys (T, D), targets (T,)."""
    T = len(targets)
    out = torch.zeros(T, dtype=torch.float64, device=keys.device)
    if window == 0 or T < 2:
        return out
    for a in range(1, T, CHUNK):
        b = min(a + CHUNK, T)
        lo = max(0, a - window)
        scores = theta * (keys[a:b] @ keys[lo : b - 1].T).double()  # queries a..b-1, keys lo..b-2
        t = torch.arange(a, b, device=keys.device)[:, None]
        i = torch.arange(lo, b - 1, device=keys.device)[None, :]
        seen = (i < t) & (i >= t - window)  # only states before t, at most `window` of them
        weights = torch.softmax(scores.masked_fill(~seen, -math.inf), dim=1)
        same = targets[lo : b - 1][None, :] == targets[a:b, None]  # the remembered word is the one to predict
        out[a:b] = (weights * same).sum(1)
    return out


def mixed_nll(model_nll: np.ndarray, keys: torch.Tensor, targets: torch.Tensor, window: int, theta: float,
              lam: float) -> np.ndarray:  # fmt: skip
    """Each position's NLL under the mixture (the model's alone where the cache is still empty)."""
    p_cache = cache_probs(keys, targets.to(keys.device), window, theta).cpu().numpy()
    p_model = np.exp(-model_nll)
    empty = np.full(len(model_nll), window == 0)
    empty[:1] = True  # the first position has nothing remembered
    mixed = (1.0 - lam) * p_model + lam * p_cache
    return np.where(empty, model_nll, -np.log(mixed))


def cache_distribution(logits: torch.Tensor, keys: torch.Tensor, targets: torch.Tensor, t: int, window: int,
                       theta: float, lam: float) -> torch.Tensor:  # fmt: skip
    """The whole mixed distribution at position t (fp64, over the vocabulary): what `mixed_nll` scores one word of,
    for checks and inspection. logits: the model's scores at t."""
    p = torch.softmax(logits.double(), -1)
    lo = max(0, t - window)
    if t == lo:
        return p
    weights = torch.softmax(theta * (keys[lo:t] @ keys[t]).double(), 0)
    cache = torch.zeros_like(p).index_add_(0, targets[lo:t].to(p.device), weights)
    return (1.0 - lam) * p + lam * cache
