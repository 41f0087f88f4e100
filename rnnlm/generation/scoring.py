"""Scoring sentences: each sentence's log-probability and perplexity, and the corpus perplexity.

Uses the training pipeline itself (tokenizer, length buckets, teacher-forced batches), so scoring a
model's validation split reproduces the val/ppl that training logged for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from rnnlm.data.batch import SentenceDataset
from rnnlm.data.corpus import EncodedSplit
from rnnlm.data.sampler import BucketBatchSampler
from rnnlm.data.tokenizer import special_ids
from rnnlm.errors import UserError
from rnnlm.models.rnn_lm import RNNLanguageModel


@dataclass
class Scores:
    sentences: list[str]
    logprob: np.ndarray  # per sentence, nats, <eos> included
    tokens: np.ndarray  # predicted tokens per sentence (words + <eos>)

    @property
    def ppl(self) -> np.ndarray:
        return np.exp(-self.logprob / self.tokens)

    @property
    def corpus_ppl(self) -> float:
        return float(np.exp(-self.logprob.sum() / self.tokens.sum()))


@torch.no_grad()
def score(net: RNNLanguageModel, tokenizer: Tokenizer, sentences: list[str], batch_size: int = 128) -> Scores:
    sentences = [s.strip() for s in sentences if s.strip()]
    if not sentences:
        raise UserError("there is nothing to score: give at least one non-blank sentence.")
    ids = special_ids(tokenizer)
    net.eval()
    encoded = [e.ids for e in tokenizer.encode_batch(sentences, add_special_tokens=False)]
    split = EncodedSplit.from_ids(encoded)
    data = SentenceDataset(split, ids["pad"], ids["sos"], ids["eos"])
    device = next(net.parameters()).device
    logprob = np.zeros(len(split), dtype=np.float64)
    for batch_ids in BucketBatchSampler(split.lengths.clip(min=1), batch_size, shuffle=False):
        b = data.__getitems__(batch_ids)
        logits, _ = net(b.inputs.to(device))
        nll = F.cross_entropy(
            logits.flatten(0, 1).float(), b.targets.to(device).flatten(), ignore_index=ids["pad"], reduction="none"
        )
        logprob[batch_ids] = -nll.view(b.targets.shape).double().sum(1).cpu().numpy()
    return Scores(sentences, logprob, split.lengths + 1)
