"""LanguageDataModule (alias SentenceDataModule): the prepared corpus (rnnlm.data.prepare) served as loaders in one
of two modes: `sentences` (bucketed teacher-forcing batches, state reset per sentence) or `stream` (each split one
token stream in columns, windows of bptt steps, state carried: rnnlm.data.stream)."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch.distributed as dist
from torch.utils.data import DataLoader

from rnnlm import checks
from rnnlm.data.batch import SentenceDataset
from rnnlm.data.corpus import check_lengths
from rnnlm.data.loaders import make_loader
from rnnlm.data.prepare import PreparedCorpus
from rnnlm.data.sampler import BucketBatchSampler, ResumableOrder, check_batching
from rnnlm.data.stream import check_stream_settings
from rnnlm.data.windows import StreamWindows, WindowSampler, columns_and_windows
from rnnlm.errors import UserError


def check_data_settings(
    batch_size: int | None = 32, max_tokens: int | None = None, eval_batch_size: int | None = None,
    bucket_width: int = 1, min_len: int = 1, max_len: int | None = None, num_workers: int = 0,
    mode: str = "sentences", bptt: int = 35, variable_bptt: bool = False,
) -> None:  # fmt: skip
    """The batching and filtering settings, checked by their owners (also before any data is read)."""
    check_stream_settings(mode, bptt, variable_bptt, batch_size, max_tokens, bucket_width)
    check_batching(batch_size, max_tokens, bucket_width)
    checks.integer("data.eval_batch_size", eval_batch_size, optional=True)
    checks.integer("data.num_workers", num_workers, minimum=0)
    check_lengths(min_len, max_len)
    if min_len == 0 and mode != "stream":
        raise UserError(
            "data.min_len=0 keeps empty lines, which only data.mode=stream reads (as a lone <eos>, as WikiText's "
            "published numbers do): set data.mode=stream, or data.min_len=1 to drop them."
        )


def _of_corpus(name: str) -> property:
    """The prepared corpus's attribute `name`, read through the DataModule (as other code asks it)."""
    return property(lambda self: getattr(self.corpus, name), doc=f"self.corpus.{name} (rnnlm.data.prepare)")


class LanguageDataModule(L.LightningDataModule):
    """The loaders of a corpus (`self.corpus`, a PreparedCorpus) in `mode` sentences or stream; what the corpus
    holds (splits, tokenizer, tokenizer_json, meta, ...) reads through as the DataModule's own."""

    def __init__(
        self,
        source: str = "ptb",
        mode: str = "sentences",
        tokenizer: dict[str, Any] | None = None,
        tokenizer_json: str | None = None,
        batch_size: int | None = 32,
        max_tokens: int | None = None,
        eval_batch_size: int | None = None,
        bucket_width: int = 1,
        min_len: int = 1,
        max_len: int | None = None,
        num_workers: int = 0,
        bptt: int = 35,
        variable_bptt: bool = False,
        seed: int = 0,
        cache_dir: str | None = None,
        **source_args: Any,
    ) -> None:
        """`tokenizer` holds build settings (kind, vocab_size, ...); `tokenizer_json` is a saved one (from a
        checkpoint) that encodes the data instead of a newly learned one. `source_args` go to the source
        (paths, ...). `cache_dir` keeps encoded corpora between runs (None: encode every time)."""
        super().__init__()
        check_data_settings(batch_size, max_tokens, eval_batch_size, bucket_width, min_len, max_len, num_workers,
                            mode, bptt, variable_bptt)  # fmt: skip
        self.mode, self.bptt, self.variable_bptt = mode, bptt, variable_bptt
        self.corpus = PreparedCorpus(source, tokenizer, tokenizer_json, min_len, max_len, cache_dir, seed=seed,
                                     **source_args)  # fmt: skip
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.eval_batch_size = eval_batch_size or batch_size
        self.sentence_start = "sos"  # the special a sentence is read after (eval.py: the checkpoint's, tokenizer.py)
        self.bucket_width = bucket_width
        self.num_workers, self.seed = num_workers, seed

    # -- the prepared corpus ------------------------------------------------------------------------------
    source = _of_corpus("source")
    splits = _of_corpus("splits")
    tokenizer = _of_corpus("tokenizer")
    tokenizer_json = _of_corpus("tokenizer_json")  # the given one, or the learned one once prepared
    meta = _of_corpus("meta")
    cache_folder = _of_corpus("cache_folder")
    vocab_size = _of_corpus("vocab_size")
    ids = _of_corpus("ids")

    def prepare(self) -> None:
        """Load the encoded corpus from the cache, or read, tokenize, encode and cache it (idempotent)."""
        self.corpus.prepare()

    def target_counts(self) -> np.ndarray:
        return self.corpus.target_counts()

    def stream(self, split: str) -> np.ndarray:
        return self.corpus.stream(split)

    def prepare_data(self) -> None:
        # Lightning runs this on one process per node before setup(): the others then load the cache.
        if self.corpus.cache_dir is not None:
            self.prepare()

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    # -- loaders ------------------------------------------------------------------------------------------
    @staticmethod
    def _ranks() -> tuple[int, int]:
        distributed = dist.is_available() and dist.is_initialized()
        return (dist.get_world_size(), dist.get_rank()) if distributed else (1, 0)

    def sampler(self, split: str) -> ResumableOrder:
        """The batch order of a split: sentence ids per batch, or (stream mode) window spans."""
        if self.mode == "stream":
            return self._stream(split)[1]
        train = split == "train"
        num_replicas, rank = self._ranks()
        # trainer.overfit_batches must see the same batches every epoch: Lightning turns off the shuffling
        # of a sampler, but this is a batch sampler, which shuffles itself.
        overfit = bool(getattr(self.trainer, "overfit_batches", 0))
        return BucketBatchSampler(
            self.splits[split].lengths,
            batch_size=self.batch_size if train else self.eval_batch_size,
            max_tokens=self.max_tokens,
            bucket_width=self.bucket_width,
            shuffle=train and not overfit,
            seed=self.seed,
            num_replicas=num_replicas,
            rank=rank,
        )

    def check_layout(self, num_replicas: int) -> None:
        """Stream mode: every split's columns and windows can be made on `num_replicas` processes (checked
        before training starts, so a bptt or column count that does not fit costs no epoch)."""
        if self.mode == "stream":
            for split in self.splits:
                self._stream(split, num_replicas, 0)

    def _stream(
        self, split: str, num_replicas: int | None = None, rank: int = 0
    ) -> tuple[StreamWindows, WindowSampler]:
        """This rank's columns of a split and the windows over them (see columns_and_windows)."""
        stream = self.stream(split)
        if num_replicas is None:
            num_replicas, rank = self._ranks()
        train = split == "train"
        variable = self.variable_bptt and train
        epoch = getattr(self.trainer, "current_epoch", 0) if variable else 0  # made anew each epoch (see WindowSampler)
        columns = self.batch_size if train else self.eval_batch_size
        return columns_and_windows(stream, split, columns, self.ids["pad"], self.bptt, variable, self.seed, epoch,
                                   num_replicas, rank)  # fmt: skip

    def _loader(self, split: str) -> DataLoader:
        self.prepare()
        if self.mode == "stream":
            dataset, order = self._stream(split)
        else:
            ids = self.ids
            dataset = SentenceDataset(self.splits[split], ids["pad"], ids[self.sentence_start], ids["eos"])
            order = self.sampler(split)
        return make_loader(dataset, order, split == "train", self.num_workers, self.seed)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


SentenceDataModule = LanguageDataModule  # its first name: checkpoints' configs and users' code say it
