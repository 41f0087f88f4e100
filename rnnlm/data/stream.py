"""Stream mode: each split one token stream, cut into parallel columns read in windows of `bptt` steps.

This is how every published Penn Treebank number is measured (pytorch/examples' word_language_model,
Zaremba et al. 2014, AWD-LSTM): sentences in corpus order, each followed by <eos> (no <sos>), the hidden
state carried from window to window and detached (truncated backpropagation through time).

Here: the settings' check, the stream of a split (`to_stream`) and its columns; the windows they are read in,
and which columns and windows each split gets (`columns_and_windows`), are rnnlm.data.windows'. Columns are
built once, as views of the stream (training) or one padded copy (evaluation); a window is a slice of them.

Column boundaries. Training cuts the stream's (input, target) pairs into batch_size x world_size equal
columns and drops the remainder (fewer than that many pairs), as pytorch/examples does. Evaluation
scores every token of the split after the first exactly once: the pairs are split into eval_batch_size
columns whose lengths differ by at most one (the short ones padded at their end, pads not scored), and
column c's first input is column c-1's last target. Each column starts from a zero state, so with more
columns a few more tokens are predicted with little context; with one column the number equals a plain
token-by-token loop. (pytorch/examples instead drops each column's first token and the remainder, its
issue #453, so its perplexity covers slightly fewer tokens.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnlm import checks
from rnnlm.data.corpus import EncodedSplit
from rnnlm.errors import UserError

MODES = ("sentences", "stream")


def check_stream_settings(mode: str, bptt: int, variable_bptt: bool, batch_size: int | None,
                          max_tokens: int | None, bucket_width: int) -> None:  # fmt: skip
    if mode not in MODES:
        raise UserError(f"data.mode={mode!r} is not a batching mode: use sentences or stream.")
    checks.integer("data.bptt", bptt)
    checks.boolean("data.variable_bptt", variable_bptt)
    if mode != "stream":
        return
    if max_tokens is not None:
        raise UserError(
            f"data.max_tokens={max_tokens} sizes sentence batches, and data.mode=stream reads columns: set "
            "data.max_tokens=null and the columns with data.batch_size."
        )
    if batch_size is None:
        raise UserError("data.mode=stream needs data.batch_size (the number of columns): set it, e.g. 20.")
    if bucket_width != 1:
        raise UserError(
            f"data.bucket_width={bucket_width} groups sentences by length, which data.mode=stream does not do: "
            "remove it (or set 1)."
        )


def to_stream(split: EncodedSplit, eos: int) -> np.ndarray:
    """The split's sentences back to back, each followed by <eos> (int32)."""
    n = len(split)
    stream = np.empty(len(split.tokens) + n, dtype=np.int32)
    ends = split.offsets[1:] + np.arange(n)  # sentence i's <eos> comes after i earlier ones
    words = np.ones(len(stream), dtype=bool)
    words[ends] = False
    stream[words] = split.tokens
    stream[ends] = eos
    return stream


@dataclass(frozen=True)
class Columns:
    """This rank's columns: inputs[r, t] is followed by targets[r, t]; `pad` targets are not scored."""

    inputs: torch.Tensor  # (rows, steps) int32
    targets: torch.Tensor
    scored: np.ndarray  # scored targets before each step: scored[t] = targets[:, :t] that are real
    target_index: np.ndarray | None = None  # evaluation: each target's position in the stream (-1: pad)

    @property
    def steps(self) -> int:
        return self.inputs.shape[1]


def train_columns(stream: np.ndarray, batch_size: int, num_replicas: int = 1, rank: int = 0) -> Columns:
    rows = batch_size * num_replicas
    steps = (len(stream) - 1) // rows
    if steps < 1:
        raise UserError(
            f"the training stream has {len(stream)} tokens, too few for {rows} columns "
            f"(data.batch_size={batch_size} x {num_replicas} processes): lower data.batch_size."
        )
    t = torch.from_numpy(stream)
    used = rows * steps
    mine = slice(rank * batch_size, (rank + 1) * batch_size)
    inputs, targets = t[:used].view(rows, steps)[mine], t[1 : used + 1].view(rows, steps)[mine]
    return Columns(inputs, targets, np.arange(steps + 1) * batch_size)


def eval_columns(stream: np.ndarray, columns: int, pad: int, split: str, num_replicas: int = 1, rank: int = 0,
                 key: str = "data.eval_batch_size") -> Columns:  # fmt: skip
    """`key` names the setting that gave `columns` in the messages (generate.py's is `columns`)."""
    pairs = len(stream) - 1
    if columns > pairs:
        raise UserError(
            f"{key}={columns} columns is more than the {split} stream's {pairs} scored tokens: "
            f"lower {key} (10 or 1 are the usual choices)."
        )
    if columns % num_replicas:
        raise UserError(
            f"{key}={columns} evaluation columns cannot be shared evenly by {num_replicas} "
            f"processes: make it a multiple of {num_replicas}."
        )
    sizes = np.full(columns, pairs // columns)
    sizes[: pairs % columns] += 1  # lengths differ by at most one
    steps = int(sizes[0])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    pos = starts[:, None] + np.arange(steps)[None, :]
    real = np.arange(steps)[None, :] < sizes[:, None]
    inputs = np.where(real, stream[np.minimum(pos, pairs - 1)], pad).astype(np.int32)
    targets = np.where(real, stream[np.minimum(pos + 1, pairs)], pad).astype(np.int32)
    per = columns // num_replicas
    mine = slice(rank * per, (rank + 1) * per)
    scored = np.r_[0, np.cumsum(real[mine].sum(0))]
    index = np.where(real, pos + 1, -1)[mine]
    return Columns(torch.from_numpy(inputs[mine].copy()), torch.from_numpy(targets[mine].copy()), scored, index)
