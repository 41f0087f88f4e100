"""Stream mode's windows: the columns (rnnlm.data.stream) read `bptt` steps at a time, the hidden state carried
from window to window and detached (truncated backpropagation through time). A window is a slice of the columns,
so serving a batch gathers nothing. With variable BPTT (AWD-LSTM, Merity et al. 2017) each window's length is
drawn: N(bptt, 5) with probability 0.95, else N(bptt / 2, 5), at least 5 steps, the step's learning rate scaled
by its length over bptt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from rnnlm.data.batch import Batch
from rnnlm.data.sampler import ResumableOrder
from rnnlm.data.stream import Columns, eval_columns, train_columns
from rnnlm.errors import UserError

FULL_PROBABILITY, SIGMA, MIN_WINDOW = 0.95, 5.0, 5


class WindowSampler(ResumableOrder):
    """Windows (start, end) over the columns' steps, in order. Fixed: `bptt` steps each (the last one
    shorter). Variable (AWD-LSTM): each window's length drawn from (seed, epoch), so every rank draws the
    same windows and a resumed run rebuilds the epoch it stopped in. The number of variable windows
    differs from epoch to epoch, and Lightning reads a loader's length once per loading, so the training
    loader is made anew every epoch (build() sets trainer.reload_dataloaders_every_n_epochs=1) for
    `epoch`, which its len() is then exact for."""

    def __init__(self, steps: int, bptt: int, variable: bool = False, seed: int = 0, epoch: int = 0,
                 num_replicas: int = 1) -> None:  # fmt: skip
        self.steps, self.bptt, self.variable, self.seed, self.num_replicas = steps, bptt, variable, seed, num_replicas
        self._start_order()
        self.epoch = epoch

    def batches(self, epoch: int | None = None) -> list[tuple[int, int]]:
        epoch = self.epoch if epoch is None else epoch
        if not self.variable:
            return [(s, min(s + self.bptt, self.steps)) for s in range(0, self.steps, self.bptt)]
        rng = np.random.default_rng([self.seed, epoch])
        most = self.steps // MIN_WINDOW + 1
        mean = np.where(rng.random(most) < FULL_PROBABILITY, self.bptt, self.bptt / 2)
        lengths = np.maximum(MIN_WINDOW, rng.normal(mean, SIGMA).astype(np.int64))
        ends = np.minimum(np.cumsum(lengths), self.steps)
        ends = ends[: int(np.searchsorted(ends, self.steps)) + 1]
        starts = np.r_[0, ends[:-1]]
        return list(zip(starts.tolist(), ends.tolist()))

    def __len__(self) -> int:
        return len(self.batches())

    def _items(self, batch: tuple[int, int]) -> list[int]:
        return list(batch)

    def layout(self) -> dict[str, Any]:
        return {"steps": self.steps, "bptt": self.bptt, "variable_bptt": self.variable, "seed": self.seed,
                "num_replicas": self.num_replicas}  # fmt: skip


class StreamWindows(Dataset):
    """Serves a window [start, end) of the columns as a Batch; the DataLoader hands `__getitems__` the
    span from the WindowSampler. `lr_scale` is the window's length over bptt with variable windows (the
    step's learning rate is scaled by it, as in AWD-LSTM), else 1."""

    def __init__(self, columns: Columns, bptt: int, variable: bool) -> None:
        self.columns, self.bptt, self.variable = columns, bptt, variable

    def __len__(self) -> int:
        return self.columns.steps

    def __getitems__(self, span: list[int]) -> Batch:
        start, end = span
        c = self.columns
        return Batch(
            c.inputs[:, start:end].long(),
            c.targets[:, start:end].long(),
            int(c.scored[end] - c.scored[start]),
            (end - start) / self.bptt if self.variable else 1.0,
            continues=True,
        )


def columns_and_windows(stream: np.ndarray, split: str, columns: int, pad: int, bptt: int, variable: bool,
                        seed: int, epoch: int, num_replicas: int = 1,
                        rank: int = 0) -> tuple[StreamWindows, WindowSampler]:  # fmt: skip
    """This rank's columns of a split and the windows over them: training in `columns` (data.batch_size) columns
    per rank, evaluation in `columns` (data.eval_batch_size) shared by the ranks, so that its numbers do not
    depend on the number of devices. `variable` windows (training only) are drawn for `epoch`."""
    if split == "train":
        cols = train_columns(stream, columns, num_replicas, rank)
        if bptt > cols.steps:
            raise UserError(
                f"data.bptt={bptt} is longer than the training columns ({len(stream)} tokens in "
                f"{columns * num_replicas} columns of {cols.steps} steps): lower data.bptt or data.batch_size."
            )
    else:
        cols = eval_columns(stream, columns, pad, split, num_replicas, rank)
    windows = WindowSampler(cols.steps, bptt, variable, seed, epoch, num_replicas)
    return StreamWindows(cols, bptt, variable), windows
