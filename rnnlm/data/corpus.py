"""An encoded corpus split: one flat int32 token array plus sentence offsets.

A flat array instead of a list of lists keeps a million sentences in a few dozen MB and lets the
collate function gather a whole batch with one fancy-indexing call.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
from tokenizers import Tokenizer

from rnnlm import checks
from rnnlm.data.encoding import encode_ids
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
    tokens, lengths = encode_ids(sentences, tok)
    short_mask = lengths < min_len
    long_mask = lengths > max_len if max_len is not None else np.zeros_like(short_mask)
    short, long = int(short_mask.sum()), int(long_mask.sum())
    if short or long:
        keep = ~(short_mask | long_mask)
        tokens = tokens[np.repeat(keep, lengths)]
        lengths = lengths[keep]
    if len(lengths) == 0:
        raise UserError(
            f"the length limits removed every {name} sentence ({short} shorter than data.min_len={min_len}, "
            f"{long} longer than data.max_len={max_len}): widen data.min_len / data.max_len."
        )
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return EncodedSplit(tokens, offsets), FilterStats(len(lengths), short, long)


def encode_splits(
    sentences: dict[str, list[str]], tok: Tokenizer, min_len: int = 1, max_len: int | None = None
) -> tuple[dict[str, EncodedSplit], dict[str, FilterStats]]:
    check_lengths(min_len, max_len)
    out, stats = {}, {}
    for split, sents in sentences.items():
        out[split], stats[split] = encode_split(sents, tok, min_len, max_len, split)
    return out, stats


def check_lengths(min_len: int, max_len: int | None) -> None:
    checks.integer("data.min_len", min_len, minimum=0)  # 0 keeps empty lines: stream mode reads each as an <eos>
    checks.integer("data.max_len", max_len, optional=True)
    if max_len is not None and max_len < min_len:
        raise UserError(f"data.max_len={max_len} is below data.min_len={min_len}: raise data.max_len.")
