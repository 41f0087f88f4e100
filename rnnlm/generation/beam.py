"""Beam search: the `beam_size` most probable continuations of every prompt, all prompts' beams in one batch.

A finished beam continues only with <pad>, at no cost, so it keeps its score and its place among the
others; the final ranking divides each beam's log-probability by `length ** length_penalty`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # search.py imports this module: the names are for annotations only
    from rnnlm.generation.search import GenerationConfig, Generator


def beam_search(
    gen: Generator, prompts: list[str], n_best: int, cfg: GenerationConfig
) -> list[tuple[int, list[int], float]]:
    """The n_best beams of each prompt, best first, prompt by prompt: (prompt index, token ids, log-prob)."""
    k, P = cfg.beam_size, len(prompts)
    eos, pad = gen.ids["eos"], gen.ids["pad"]
    feats, hidden = gen._read_prompts(prompts, k)
    logp = gen._log_probs(feats)  # (P*k, V)
    vocab = logp.shape[-1]
    scores = torch.full((P, k), float("-inf"), device=gen.device, dtype=torch.float64)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first at step one
    seqs = torch.empty((P * k, 0), dtype=torch.long, device=gen.device)
    done = torch.zeros(P * k, dtype=torch.bool, device=gen.device)
    for t in range(cfg.max_len):
        # Finished beams may add only <pad>, at log-prob 0; unfinished ones anything but <pad>.
        step = logp.double().masked_fill(done[:, None], float("-inf"))
        step[:, pad] = torch.where(done, 0.0, float("-inf"))
        cand = (scores.view(-1, 1) + step).view(P, k * vocab)
        scores, flat = cand.topk(k, dim=-1)
        beam = (flat // vocab) + torch.arange(P, device=gen.device)[:, None] * k
        beam, token = beam.view(-1), (flat % vocab).view(-1)
        seqs = torch.cat([seqs.index_select(0, beam), token[:, None]], dim=1)
        done = done.index_select(0, beam) | (token == eos)
        if bool(done.all()) or t == cfg.max_len - 1:
            break
        feats, hidden = gen._step(token, hidden, rows=beam)
        logp = gen._log_probs(feats)
    lengths = (seqs != pad).sum(-1).clamp(min=1).view(P, k).double()
    ranked = (scores / lengths**cfg.length_penalty).argsort(dim=-1, descending=True)
    return [
        (p, [i for i in seqs[p * k + j].tolist() if i != pad], float(scores[p, j]))
        for p in range(P)
        for j in ranked[p, :n_best].tolist()
    ]
