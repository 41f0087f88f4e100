"""Scoring sentences: each sentence's log-probability and perplexity, and the corpus perplexity.

Uses the training pipeline itself (tokenizer, length buckets, teacher-forced batches), so scoring a
model's validation split reproduces the val/ppl that training logged for it. With carry_state the lines
are one stream, as stream mode reads a split (each line + <eos>, the state carried across lines, in
`columns` columns): scoring a test split so reproduces a stream model's test/ppl logged with
data.eval_batch_size=columns.
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
from rnnlm.data.stream import eval_columns, to_stream
from rnnlm.data.tokenizer import sentence_start, special_ids
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


WINDOW = 64  # steps per forward call when the state is carried (no gradients: only speed depends on it)


@torch.no_grad()
def score(net: RNNLanguageModel, tokenizer: Tokenizer, sentences: list[str], batch_size: int = 128,
          data_mode: str = "sentences", carry_state: bool = False, columns: int = 1) -> Scores:  # fmt: skip
    """Each sentence's log-probability. `data_mode` is how the network was trained (a stream-trained one
    starts a sentence after <eos>, not <sos>). carry_state: the sentences as one stream; the first token
    of the first line is context only, every later token is scored once."""
    sentences = [s.strip() for s in sentences if s.strip()]
    if not sentences:
        raise UserError("there is nothing to score: give at least one non-blank sentence.")
    ids = special_ids(tokenizer)
    net.eval()
    encoded = [e.ids for e in tokenizer.encode_batch(sentences, add_special_tokens=False)]
    split = EncodedSplit.from_ids(encoded)
    if carry_state:
        return _score_stream(net, split, sentences, ids, columns)
    start = ids[sentence_start(data_mode)]
    data = SentenceDataset(split, ids["pad"], start, ids["eos"])
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


def _score_stream(net: RNNLanguageModel, split: EncodedSplit, sentences: list[str], ids: dict[str, int],
                  columns: int) -> Scores:  # fmt: skip
    stream = to_stream(split, ids["eos"])
    if len(stream) < 2:
        raise UserError("carry_state=true scores every token after the first: give more than one token to score.")
    c = eval_columns(stream, columns, ids["pad"], "score_path", key="columns")
    device = next(net.parameters()).device
    nll, hidden = np.zeros(c.inputs.shape, dtype=np.float64), None
    for start in range(0, c.steps, WINDOW):
        window = slice(start, start + WINDOW)
        logits, hidden = net(c.inputs[:, window].long().to(device), hidden)
        targets = c.targets[:, window].long().to(device)
        out = F.cross_entropy(
            logits.flatten(0, 1).float(), targets.flatten(), ignore_index=ids["pad"], reduction="none"
        )
        nll[:, window] = out.view(targets.shape).double().cpu().numpy()
    sentence_of = np.repeat(np.arange(len(split)), split.lengths + 1)  # each stream position's line
    real = c.target_index >= 0
    lines = sentence_of[c.target_index[real]]
    logprob = -np.bincount(lines, weights=nll[real], minlength=len(split))
    tokens = np.bincount(lines, minlength=len(split))
    return Scores(sentences, logprob, tokens)
