"""The DataLoaders the DataModule serves, in either mode: a dataset read in the order of a ResumableOrder (sentence
buckets or stream windows), the training one resumable mid-epoch (ResumableLoader)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from rnnlm.data.batch import keep_batch
from rnnlm.data.sampler import ResumableOrder


class ResumableLoader(DataLoader):
    """A DataLoader whose position Lightning saves in checkpoints (it calls state_dict on stateful loaders)
    and restores on resume, so a run resumed mid-epoch continues with the batches it had not yet seen."""

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)


def make_loader(dataset: Dataset, order: ResumableOrder, resumable: bool, num_workers: int, seed: int) -> DataLoader:
    """The loader of `dataset` in batches of `order` (a ResumableLoader if `resumable`: the training one)."""
    return (ResumableLoader if resumable else DataLoader)(
        dataset,
        batch_sampler=order,
        collate_fn=keep_batch,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        # Each loader draws its workers' base seed from its own generator, not the global one, so
        # opening a loader never shifts the random stream that dropout uses (exact resume).
        generator=torch.Generator().manual_seed(seed),
    )
