"""BucketBatchSampler: batches of sentences of (nearly) one length, reshuffled every epoch, sharded over
DDP ranks, resumable mid-epoch.

Grouping by length means almost no padding: with bucket_width=1 every batch holds sentences of exactly
one length, so the model never runs over a pad token. The order is a pure function of (seed, epoch), so
two runs with the same seed see the same batches, every rank can compute the same global order without
talking to the others, and a resumed run can rebuild any epoch and skip what it had already trained on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from rnnlm import checks
from rnnlm.errors import UserError


def check_batching(batch_size: int | None, max_tokens: int | None, bucket_width: int) -> None:
    checks.integer("data.batch_size", batch_size, optional=True)
    checks.integer("data.max_tokens", max_tokens, optional=True)
    if batch_size is None and max_tokens is None:
        raise UserError("data.batch_size and data.max_tokens are both null: set one of them.")
    checks.integer("data.bucket_width", bucket_width)


class ResumableOrder(Sampler[list[int]], ABC):
    """What both batch orders (sentence buckets, stream windows) share: a fixed order per epoch, `set_epoch`
    as Lightning calls it, and a mid-epoch position that checkpoints save and resumed runs skip to.

    Subclasses give `batches(epoch)` and `layout()`: the settings a saved position is only valid under.
    """

    def _start_order(self) -> None:
        self.epoch = 0
        self.consumed = 0  # batches of this epoch already trained on (set by the training loop)
        self._resume_at = 0  # where the next __iter__ starts (after load_state_dict)

    @abstractmethod
    def batches(self, epoch: int | None = None) -> list: ...

    @abstractmethod
    def layout(self) -> dict[str, Any]: ...

    def epoch_length(self) -> int:
        """Batches in the current epoch (len() is the most any epoch has)."""
        return len(self)

    def _items(self, batch) -> Any:
        return batch.tolist()

    @property
    def sampler(self) -> ResumableOrder:
        """Lightning calls `set_epoch` on a loader's `batch_sampler.sampler` before every epoch (not on the
        batch sampler itself); pointing it here makes any Trainer reorder this one per epoch."""
        return self

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self._resume_at, self.consumed = epoch, 0, 0

    def __iter__(self) -> Iterator[Any]:
        start, self._resume_at = self._resume_at, 0
        for batch in self.batches()[start:]:
            yield self._items(batch)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "consumed": self.consumed, **self.layout()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in self.layout().items():
            if state.get(key) != value:
                raise UserError(
                    f"the checkpoint was saved mid-epoch with a different batch order ({key} {state.get(key)} there, "
                    f"{value} now): resume with the same data, batch and device settings, or from an "
                    f"end-of-epoch checkpoint."
                )
        self.epoch, self.consumed, self._resume_at = state["epoch"], state["consumed"], state["consumed"]
        if self.consumed >= self.epoch_length():  # saved at the end of an epoch: the next one starts afresh
            self.epoch, self.consumed, self._resume_at = self.epoch + 1, 0, 0


class BucketBatchSampler(ResumableOrder):
    """Sentence ids in batches; `batch_size` sentences a batch, or `max_tokens` padded tokens a batch.

    With num_replicas > 1 each rank gets every num_replicas-th batch of one global order, and every rank
    the same number of batches: when the count does not divide, the biggest batches are halved until it
    does, so each sentence is still seen exactly once per epoch across ranks (nothing dropped or repeated).
    """

    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int | None = 32,
        max_tokens: int | None = None,
        bucket_width: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        check_batching(batch_size, max_tokens, bucket_width)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if len(self.lengths) < num_replicas:
            raise UserError(
                f"{len(self.lengths)} sentences cannot be shared by {num_replicas} processes: use fewer devices."
            )
        self.batch_size, self.max_tokens, self.bucket_width = batch_size, max_tokens, bucket_width
        self.shuffle, self.seed = shuffle, seed
        self.num_replicas, self.rank = num_replicas, rank
        self._start_order()
        # Bucket of a sentence: lengths 1..w -> 0, w+1..2w -> 1, ...
        self.keys = (self.lengths - 1) // bucket_width
        self._num_batches = len(self._global_batches(0, shuffle=False)) // num_replicas

    # -- the order -------------------------------------------------------------------------------------
    def _rows(self, width: np.ndarray) -> np.ndarray:
        """Sentences per batch for buckets whose padded width (longest + 1 for <sos>/<eos>) is `width`."""
        if self.max_tokens is None:
            return np.full_like(width, self.batch_size)
        return np.maximum(1, self.max_tokens // width)

    def _global_batches(self, epoch: int, shuffle: bool) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.lengths)
        # A random permutation followed by a stable sort on the bucket key shuffles within each bucket.
        ids = rng.permutation(n) if shuffle else np.arange(n)
        ids = ids[np.argsort(self.keys[ids], kind="stable")]
        keys = self.keys[ids]
        bucket_start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        bucket_end = np.r_[bucket_start[1:], n]
        width = np.maximum.reduceat(self.lengths[ids], bucket_start) + 1
        starts = np.concatenate([np.arange(s, e, r) for s, e, r in zip(bucket_start, bucket_end, self._rows(width))])
        batches = np.split(ids, starts[1:])
        if self.num_replicas > 1:
            batches = self._divisible(batches)
        if shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _divisible(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Halve the biggest batches until the count divides by num_replicas (deterministic)."""
        while len(batches) % self.num_replicas:
            i = max(range(len(batches)), key=lambda j: (len(batches[j]), -j))
            if len(batches[i]) < 2:
                raise UserError(
                    f"{len(batches)} one-sentence batches cannot be shared evenly by {self.num_replicas} processes: "
                    f"use fewer devices."
                )
            big = batches.pop(i)
            half = (len(big) + 1) // 2
            batches[i:i] = [big[:half], big[half:]]
        return batches

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """This rank's batches of one epoch, in the order they are served (arrays of sentence indices)."""
        epoch = self.epoch if epoch is None else epoch
        return self._global_batches(epoch, self.shuffle)[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        return self._num_batches

    def layout(self) -> dict[str, Any]:
        return {"seed": self.seed, "num_replicas": self.num_replicas, "num_sentences": len(self.lengths),
                "num_batches": self._num_batches}  # fmt: skip
