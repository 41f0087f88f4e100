"""An encoded corpus split: one flat int32 token array plus sentence offsets.

A flat array instead of a list of lists keeps a million sentences in a few dozen MB and lets the
collate function gather a whole batch with one fancy-indexing call.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
from tokenizers import Tokenizer

from rnnlm.errors import UserError


@dataclass(frozen=True)
class EncodedSplit:
    tokens: np.ndarray  # int32, all sentences back to back, no specials
    offsets: np.ndarray  # int64, len = num_sentences + 1; sentence i is tokens[offsets[i]:offsets[i+1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sentence(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]

    @classmethod
    def from_ids(cls, ids: list[list[int]]) -> EncodedSplit:
        lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        tokens = np.fromiter(chain.from_iterable(ids), dtype=np.int32, count=int(offsets[-1]))
        return cls(tokens, offsets)


@dataclass(frozen=True)
class FilterStats:
    kept: int
    too_short: int
    too_long: int


def encode_split(
    sentences: list[str], tok: Tokenizer, min_len: int = 1, max_len: int | None = None, name: str = "train"
) -> tuple[EncodedSplit, FilterStats]:
    """Encode sentences and keep those with min_len <= tokens <= max_len."""
    ids = [e.ids for e in tok.encode_batch(sentences, add_special_tokens=False)]
    short = sum(1 for s in ids if len(s) < min_len)
    long = sum(1 for s in ids if max_len is not None and len(s) > max_len)
    if short or long:
        ids = [s for s in ids if len(s) >= min_len and (max_len is None or len(s) <= max_len)]
    if not ids:
        raise UserError(
            f"the length limits removed every {name} sentence ({short} shorter than data.min_len={min_len}, "
            f"{long} longer than data.max_len={max_len}): widen data.min_len / data.max_len."
        )
    return EncodedSplit.from_ids(ids), FilterStats(len(ids), short, long)


def encode_splits(
    sentences: dict[str, list[str]], tok: Tokenizer, min_len: int = 1, max_len: int | None = None
) -> tuple[dict[str, EncodedSplit], dict[str, FilterStats]]:
    if min_len < 1:
        raise UserError(f"data.min_len={min_len} must be at least 1: an empty sentence has nothing to predict.")
    if max_len is not None and max_len < min_len:
        raise UserError(f"data.max_len={max_len} is below data.min_len={min_len}: raise data.max_len.")
    out, stats = {}, {}
    for split, sents in sentences.items():
        out[split], stats[split] = encode_split(sents, tok, min_len, max_len, split)
    return out, stats
