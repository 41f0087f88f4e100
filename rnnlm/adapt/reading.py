"""How adaptation reads a text: one row (batch size 1), in segments, every token scored before anything learns
from it.

A Reading is the text as the model reads it. Stream layout (a stream-trained model, data.mode=stream, or scoring with
carry_state=true): the sentences back to back, each + <eos>, the state carried throughout; the first token is
context only, as in stream evaluation. Sentence layout: each sentence read from its start token with the state
reset to zeros, every word and <eos> scored. Either way the history that adaptation keeps (the adapted weights, the
cache's states) runs across sentences: only the recurrent state is reset.

`read` runs a network over a Reading segment by segment: each segment's tokens are scored with the weights and
state of the moment, then `update` (dynamic evaluation) may learn from them before the next segment is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from rnnlm.data.corpus import EncodedSplit
from rnnlm.data.stream import to_stream
from rnnlm.models.rnn_lm import RNNLanguageModel, detach

LAYOUTS = ("stream", "sentences")


@dataclass(frozen=True)
class Reading:
    inputs: torch.Tensor  # (T,) int64: inputs[t] is followed by targets[t]
    targets: torch.Tensor  # (T,) int64
    starts: np.ndarray  # the positions where the state starts from zeros (sorted; 0 first)
    line: np.ndarray  # each target's line (sentence) of the text
    layout: str

    def __len__(self) -> int:
        return len(self.targets)

    def head(self, tokens: int | None) -> Reading:
        """The first `tokens` scored tokens (None: all)."""
        if tokens is None or tokens >= len(self):
            return self
        starts = self.starts[self.starts < tokens]
        return Reading(self.inputs[:tokens], self.targets[:tokens], starts, self.line[:tokens], self.layout)


def reading(split: EncodedSplit, ids: dict[str, int], layout: str, start: str = "sos") -> Reading:
    """`split` in `layout`; `start` is the special a sentence is read after in the sentence layout (sos, or eos for
    a stream-trained model: rnnlm.data.tokenizer.sentence_start)."""
    stream = torch.from_numpy(to_stream(split, ids["eos"]).astype(np.int64))
    line = np.repeat(np.arange(len(split)), split.lengths + 1)  # each stream position's sentence
    if layout == "stream":
        return Reading(stream[:-1], stream[1:], np.zeros(1, dtype=np.int64), line[1:], layout)
    starts = np.r_[0, np.cumsum(split.lengths + 1)[:-1]].astype(np.int64)
    inputs = torch.roll(stream, 1)
    inputs[torch.from_numpy(starts)] = ids[start]
    return Reading(inputs, stream, starts, line, layout)


@dataclass
class Pass:
    nll: np.ndarray  # (T,) float64: each target's negative log-probability under the model as it then was
    keys: torch.Tensor | None  # (T, width) fp32: the state each target followed (the cache's keys), when asked
    seconds: float


def token_nll(net: RNNLanguageModel, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each target's NLL (fp32) under the output layer, full softmax or adaptive."""
    return F.cross_entropy(net.scores(features).float(), targets, reduction="none")


def read(net: RNNLanguageModel, text: Reading, segment: int, update: Callable[[torch.Tensor], None] | None = None,
         key: str | None = None) -> Pass:  # fmt: skip
    """Score `text` with `net` in segments of `segment` tokens. update(loss): called with each segment's mean NLL
    (with its graph) after the segment is scored. key: keep each position's rnn output or head features."""
    device = next(net.parameters()).device
    inputs, targets = text.inputs.to(device), text.targets.to(device)
    nll = torch.empty(len(text), dtype=torch.float32, device=device)
    keys = None
    starts = set(text.starts.tolist())
    bounds = np.unique(np.r_[text.starts, np.arange(0, len(text), segment), len(text)])  # segment and sentence edges
    hidden, began = None, time.perf_counter()
    a = 0
    with torch.set_grad_enabled(update is not None):
        while a < len(text):
            b = min(a + segment, len(text))
            pieces = bounds[np.searchsorted(bounds, a) : np.searchsorted(bounds, b, side="right")]
            features, outputs = [], []
            for p, q in zip(pieces[:-1], pieces[1:]):
                feats, hidden, out, _ = net.encode(inputs[None, p:q], None if p in starts else hidden)
                features.append(feats[0])
                outputs.append(out[0])
            losses = token_nll(net, torch.cat(features), targets[a:b])
            nll[a:b] = losses.detach()
            if key is not None:
                kept = torch.cat(features if key == "head" else outputs).detach().float()
                if keys is None:
                    keys = torch.empty(len(text), kept.shape[-1], dtype=torch.float32, device=device)
                keys[a:b] = kept
            if update is not None:
                update(losses.mean())
            hidden = detach(hidden)
            a = b
    return Pass(nll.double().cpu().numpy(), keys, time.perf_counter() - began)
