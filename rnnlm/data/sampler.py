"""BucketBatchSampler: batches of sentences of (nearly) one length, reshuffled every epoch.

Grouping by length means almost no padding: with bucket_width=1 every batch holds sentences of exactly
one length, so the model never runs over a pad token. The shuffle is a pure function of (seed, epoch), so
two runs with the same seed see the same batches, and a resumed run can rebuild any epoch's order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

from rnnlm.errors import UserError


class BucketBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        lengths: np.ndarray,
        batch_size: int,
        bucket_width: int = 1,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if batch_size < 1:
            raise UserError(f"data.batch_size={batch_size} must be at least 1.")
        if bucket_width < 1:
            raise UserError(f"data.bucket_width={bucket_width} must be at least 1 (1 = exact lengths).")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.bucket_width = bucket_width
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        # Bucket of a sentence: lengths 1..w -> 0, w+1..2w -> 1, ...
        self.keys = (self.lengths - 1) // bucket_width
        counts = np.bincount(self.keys) if len(self.keys) else np.zeros(0, dtype=np.int64)
        self._num_batches = int(np.sum(-(-counts // batch_size)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self._num_batches

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """All batches of one epoch, in the order they are served (arrays of sentence indices)."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self.lengths)
        # A random permutation followed by a stable sort on the bucket key shuffles within each bucket.
        ids = rng.permutation(n) if self.shuffle else np.arange(n)
        ids = ids[np.argsort(self.keys[ids], kind="stable")]
        keys = self.keys[ids]
        bucket_start = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        starts = np.concatenate(
            [np.arange(s, e, self.batch_size) for s, e in zip(bucket_start, np.r_[bucket_start[1:], n])]
        )
        batches = np.split(ids, starts[1:])
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches():
            yield batch.tolist()
