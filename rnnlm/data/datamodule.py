"""SentenceDataModule: sentences -> tokenizer -> encoded splits -> bucketed teacher-forcing batches."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from rnnlm.data import sources
from rnnlm.data.batch import SentenceDataset, keep_batch
from rnnlm.data.corpus import EncodedSplit, FilterStats, encode_splits
from rnnlm.data.sampler import BucketBatchSampler
from rnnlm.data.tokenizer import build_tokenizer, special_ids, tokenizer_from_json
from rnnlm.errors import UserError

log = logging.getLogger(__name__)

SOURCES = {"ptb": sources.ptb_sentences, "text": sources.text_sentences}


class SentenceDataModule(L.LightningDataModule):
    def __init__(
        self,
        source: str = "ptb",
        tokenizer: dict[str, Any] | None = None,
        tokenizer_json: str | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        bucket_width: int = 1,
        min_len: int = 1,
        max_len: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        **source_args: Any,
    ) -> None:
        """`tokenizer` holds build settings (kind, vocab_size, ...); `tokenizer_json` reuses a saved one
        (from a checkpoint) instead of learning a new one. `source_args` go to the source (e.g. paths)."""
        super().__init__()
        if source not in SOURCES:
            raise UserError(f"data.source={source} is not known: use one of {', '.join(SOURCES)}.")
        self.source, self.source_args = source, source_args
        self.tokenizer_cfg = dict(tokenizer or {})
        self.tokenizer_json = tokenizer_json
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.bucket_width, self.min_len, self.max_len = bucket_width, min_len, max_len
        self.num_workers, self.seed = num_workers, seed
        self.tokenizer = None
        self.splits: dict[str, EncodedSplit] | None = None
        self.filter_stats: dict[str, FilterStats] = {}

    # -- building -------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Read, tokenize and encode every split once (idempotent; Lightning calls setup per stage)."""
        if self.splits is not None:
            return
        sentences = SOURCES[self.source](**self.source_args)
        if self.tokenizer_json is not None:
            self.tokenizer = tokenizer_from_json(self.tokenizer_json)
        else:
            self.tokenizer = build_tokenizer(sentences["train"], **self.tokenizer_cfg)
            self.tokenizer_json = self.tokenizer.to_str()
        self.splits, self.filter_stats = encode_splits(sentences, self.tokenizer, self.min_len, self.max_len)
        self._log_summary()

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    @property
    def vocab_size(self) -> int:
        self.prepare()
        return self.tokenizer.get_vocab_size()

    @property
    def ids(self) -> dict[str, int]:
        self.prepare()
        return special_ids(self.tokenizer)

    def _log_summary(self) -> None:
        unk = self.ids["unk"]
        for split, data in self.splits.items():
            st = self.filter_stats[split]
            lens = data.lengths
            log.info(
                "%-5s %7d sentences (%d too short, %d too long dropped), %8d tokens, length %d-%d (mean %.1f), "
                "<unk> %.2f%%",
                split, st.kept, st.too_short, st.too_long, len(data.tokens), lens.min(), lens.max(),
                lens.mean(), 100.0 * np.count_nonzero(data.tokens == unk) / max(len(data.tokens), 1),
            )  # fmt: skip
        log.info("vocabulary: %d tokens (specials included)", self.vocab_size)

    # -- loaders --------------------------------------------------------------------------------------
    def sampler(self, split: str) -> BucketBatchSampler:
        train = split == "train"
        return BucketBatchSampler(
            self.splits[split].lengths,
            batch_size=self.batch_size if train else self.eval_batch_size,
            bucket_width=self.bucket_width,
            shuffle=train,
            seed=self.seed,
        )

    def _loader(self, split: str) -> DataLoader:
        self.prepare()
        ids = self.ids
        dataset = SentenceDataset(self.splits[split], ids["pad"], ids["sos"], ids["eos"])
        return DataLoader(
            dataset,
            batch_sampler=self.sampler(split),
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
