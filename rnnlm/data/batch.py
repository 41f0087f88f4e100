"""Turning sentence ids into teacher-forcing batches.

inputs  = <sos> w1 ... wn          targets = w1 ... wn <eos>
Shorter sentences in a bucket wider than one length are right-padded with <pad> in both; the loss
ignores pad targets, and since the RNN reads left to right, right padding never changes real outputs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from rnnlm.data.corpus import EncodedSplit


class Batch(NamedTuple):
    inputs: torch.Tensor  # (batch, time) int64
    targets: torch.Tensor  # (batch, time) int64, <pad> where there is nothing to predict
    num_tokens: int  # non-pad targets: known on the host, so no device sync is needed to count them
    lr_scale: float = 1.0  # stream mode with variable windows: this step's learning rate factor
    continues: bool = False  # stream mode: each row goes on from the previous batch's row (carry the state)


class SentenceDataset(Dataset):
    """Serves whole batches: the DataLoader hands `__getitems__` the ids from the batch sampler."""

    def __init__(self, split: EncodedSplit, pad_id: int, sos_id: int, eos_id: int) -> None:
        self.split, self.pad, self.sos, self.eos = split, pad_id, sos_id, eos_id

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> Batch:
        return self.__getitems__([i])

    def __getitems__(self, ids: list[int]) -> Batch:
        ids = np.asarray(ids, dtype=np.int64)
        starts = self.split.offsets[ids][:, None]
        lens = self.split.lengths[ids][:, None]
        width = int(lens.max()) + 1  # +1 for <sos> / <eos>
        pos = np.arange(width)[None, :]
        last = len(self.split.tokens) - 1
        # Gather with clipped indices, then overwrite what lies past each sentence's end.
        words = self.split.tokens[np.minimum(starts + pos, last)]  # words[:, p] = w_{p+1}
        targets = np.where(pos < lens, words, np.where(pos == lens, self.eos, self.pad))
        inputs = np.empty_like(targets)
        inputs[:, 0] = self.sos
        inputs[:, 1:] = np.where(pos[:, :-1] < lens, words[:, :-1], self.pad)
        return Batch(
            torch.from_numpy(inputs.astype(np.int64)),
            torch.from_numpy(targets.astype(np.int64)),
            int(lens.sum() + len(ids)),
        )


def keep_batch(batch: Batch) -> Batch:
    """collate_fn: `__getitems__` already built the batch (module-level so workers can pickle it)."""
    return batch
