"""An encoded corpus split: one flat int32 token array plus sentence offsets.

A flat array instead of a list of lists keeps a million sentences in a few dozen MB and lets the
collate function gather a whole batch with one fancy-indexing call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tqdm import tqdm

from rnnlm import checks
from rnnlm.data.encoding import BLOCK, encode_blocks
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

    def __reduce__(self):
        # Pickled for a spawned process (ddp_spawn, data-loader workers under spawn): a memory-mapped split
        # travels as its file name, so the other process maps the same pages instead of receiving a copy.
        if isinstance(self.tokens, np.memmap) and self.tokens.filename:
            return _mapped_split, (str(self.tokens.filename), len(self.tokens), self.offsets)
        return EncodedSplit, (np.asarray(self.tokens), self.offsets)

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


def _mapped_split(path: str, count: int, offsets: np.ndarray) -> EncodedSplit:
    return EncodedSplit(map_tokens(Path(path), count), offsets)


class TokenSink:
    """Where a split's token ids go as they are encoded: memory (joined at the end), or a raw int32 file at
    `path`, memory-mapped when done, so a corpus larger than memory is encoded in memory for one block."""

    def __init__(self, path: Path | None = None) -> None:
        self.path, self.count, self._parts = path, 0, []
        self._file = open(path, "wb") if path is not None else None  # noqa: SIM115  (closed by finish)

    def append(self, ids: np.ndarray) -> None:
        self.count += len(ids)
        if self._file is not None:
            self._file.write(np.ascontiguousarray(ids, dtype="<i4").tobytes())
        else:
            self._parts.append(ids)

    def finish(self) -> np.ndarray:
        if self._file is None:
            return np.concatenate(self._parts) if self._parts else np.zeros(0, dtype=np.int32)
        self._file.close()
        return map_tokens(self.path, self.count)


def map_tokens(path: Path, count: int) -> np.ndarray:
    """A raw int32 token file as an array on the page cache: copy-on-write, so every process (every DDP rank)
    reads the same pages and nothing is copied (an empty split has nothing to map)."""
    if count == 0:
        return np.zeros(0, dtype=np.int32)
    return np.memmap(path, dtype="<i4", mode="c", shape=(count,))


def count_in_chunks(tokens: np.ndarray, fn, chunk: int = 1 << 22):
    """Sum fn(part) over 4M-token parts of `tokens`: a memory-mapped corpus is read through without a
    corpus-sized temporary (a comparison or an int64 copy)."""
    return sum(fn(tokens[i : i + chunk]) for i in range(0, len(tokens), chunk))


def encode_split(
    sentences: Iterable[str], tok: Tokenizer, min_len: int = 1, max_len: int | None = None, name: str = "train",
    sink: TokenSink | None = None,
) -> tuple[EncodedSplit, FilterStats]:  # fmt: skip
    """Encode sentences (a list, or a file read a block at a time) and keep those with min_len <= tokens <=
    max_len, a block at a time; a bar on a terminal counts sentences and tokens for large splits."""
    sink = sink or TokenSink()
    lengths, short, long = [], 0, 0
    small = hasattr(sentences, "__len__") and len(sentences) < 2 * BLOCK
    with tqdm(desc=f"encoding {name}", unit=" sentences", disable=True if small else None) as bar:
        for ids, lens in encode_blocks(sentences, tok):
            too_short = lens < min_len
            too_long = lens > max_len if max_len is not None else np.zeros_like(too_short)
            keep = ~(too_short | too_long)
            short, long = short + int(too_short.sum()), long + int(too_long.sum())
            sink.append(ids if keep.all() else ids[np.repeat(keep, lens)])
            lengths.append(lens[keep])
            bar.update(len(lens))
            bar.set_postfix_str(f"{sink.count:,} tokens", refresh=False)
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    tokens = sink.finish()
    if len(lengths) == 0:
        if short == long == 0:  # nothing read at all
            raise UserError(getattr(sentences, "empty", f"the {name} split holds no sentences: give it some text."))
        raise UserError(
            f"the length limits removed every {name} sentence ({short} shorter than data.min_len={min_len}, "
            f"{long} longer than data.max_len={max_len}): widen data.min_len / data.max_len."
        )
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return EncodedSplit(tokens, offsets), FilterStats(len(lengths), short, long)


def encode_splits(
    sentences: dict[str, Iterable[str]], tok: Tokenizer, min_len: int = 1, max_len: int | None = None,
    folder: Path | None = None,
) -> tuple[dict[str, EncodedSplit], dict[str, FilterStats]]:  # fmt: skip
    """Every split; with `folder`, each split's tokens are written to `<split>.tokens.bin` there as they are
    encoded (the cache's layout) and memory-mapped."""
    check_lengths(min_len, max_len)
    out, stats = {}, {}
    for split, sents in sentences.items():
        sink = TokenSink(folder / f"{split}.tokens.bin" if folder is not None else None)
        out[split], stats[split] = encode_split(sents, tok, min_len, max_len, split, sink)
    return out, stats


def check_lengths(min_len: int, max_len: int | None) -> None:
    checks.integer("data.min_len", min_len, minimum=0)  # 0 keeps empty lines: stream mode reads each as an <eos>
    checks.integer("data.max_len", max_len, optional=True)
    if max_len is not None and max_len < min_len:
        raise UserError(f"data.max_len={max_len} is below data.min_len={min_len}: raise data.max_len.")
