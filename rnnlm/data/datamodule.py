"""SentenceDataModule: source -> tokenizer -> encoded splits (cached on disk) -> batches, in one of two modes:
`sentences` (bucketed teacher-forcing batches, state reset per sentence) or `stream` (each split one token
stream in columns, windows of bptt steps, state carried: rnnlm.data.stream)."""

from __future__ import annotations

import hashlib
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from rnnlm import checks
from rnnlm.data import cache
from rnnlm.data.batch import SentenceDataset, keep_batch
from rnnlm.data.catalog import make_source
from rnnlm.data.corpus import EncodedSplit, check_lengths, count_in_chunks, encode_splits
from rnnlm.data.sampler import BucketBatchSampler, ResumableOrder, check_batching
from rnnlm.data.stream import (
    StreamWindows,
    WindowSampler,
    check_stream_settings,
    eval_columns,
    to_stream,
    train_columns,
)
from rnnlm.data.summary import describe
from rnnlm.data.tokenizer import build_tokenizer, check_tokenizer_settings, special_ids, tokenizer_from_json
from rnnlm.errors import UserError
from rnnlm.files import os_cause

log = logging.getLogger(__name__)


class ResumableLoader(DataLoader):
    """A DataLoader whose position Lightning saves in checkpoints (it calls state_dict on stateful loaders)
    and restores on resume, so a run resumed mid-epoch continues with the batches it had not yet seen."""

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)


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


class SentenceDataModule(L.LightningDataModule):
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
        """`tokenizer` holds build settings (kind, vocab_size, ...); `tokenizer_json` reuses a saved one
        (from a checkpoint) instead of learning a new one. `source_args` go to the source (paths, ...).
        `cache_dir` keeps encoded corpora between runs (None: encode every time)."""
        super().__init__()
        check_data_settings(batch_size, max_tokens, eval_batch_size, bucket_width, min_len, max_len, num_workers,
                            mode, bptt, variable_bptt)  # fmt: skip
        self.mode, self.bptt, self.variable_bptt = mode, bptt, variable_bptt
        if tokenizer_json is None:
            check_tokenizer_settings(**(tokenizer or {}))
        self.source = make_source(source, seed=seed, **source_args)  # checks paths before anything is read
        self.tokenizer_cfg = dict(tokenizer or {})
        self.tokenizer_json = tokenizer_json
        self.given_tokenizer_json = tokenizer_json  # from a checkpoint: encode with it, learn nothing
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.eval_batch_size = eval_batch_size or batch_size
        self.bucket_width, self.min_len, self.max_len = bucket_width, min_len, max_len
        self.num_workers, self.seed = num_workers, seed
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.tokenizer = None
        self.splits: dict[str, EncodedSplit] | None = None
        self._streams: dict[str, np.ndarray] = {}  # stream mode: each split joined once, for every loader
        self.meta: dict[str, Any] = {}
        self._cached_in: Path | None = None  # the cache folder this corpus came from, for the stream files

    # -- building -------------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the encoded corpus: the source's files and settings, the tokenizer."""
        if self.given_tokenizer_json is not None:
            tokenizer = {"json_sha256": hashlib.sha256(self.given_tokenizer_json.encode()).hexdigest()}
        else:
            tokenizer = self.tokenizer_cfg
        return {**self.source.fingerprint(), "tokenizer": tokenizer, "min_len": self.min_len, "max_len": self.max_len}

    @property
    def cache_folder(self) -> Path | None:
        return self._folder(self.fingerprint())

    def _folder(self, fingerprint: dict[str, Any]) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.source.name}-{cache.cache_key(fingerprint)}"

    def prepare(self) -> None:
        """Load the encoded corpus from the cache, or read, tokenize, encode and cache it (idempotent)."""
        if self.splits is not None:
            return
        t0 = time.perf_counter()
        fingerprint = self.fingerprint()  # stats every source file (100k of them for IMDB): once
        folder = self._folder(fingerprint)
        hit = cache.load(folder) if folder is not None else None
        if hit is not None:
            self.splits, self.tokenizer_json, self.meta, self.tokenizer = hit  # the tokenizer load parsed to check it
            log.info("encoded corpus loaded from %s in %.1fs", folder, time.perf_counter() - t0)
        else:
            folder, seconds = self._build(fingerprint, folder)
            steps = ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
            log.info("corpus read, tokenized and encoded in %.1fs (%s)%s", time.perf_counter() - t0, steps,
                     f"; cached in {folder}" if folder is not None else "")  # fmt: skip
            if self.tokenizer is None:  # built without a cache (reading the cache back parsed it already)
                self.tokenizer = tokenizer_from_json(self.tokenizer_json)
        self._cached_in = folder
        for line in describe(self.splits, self.meta, self.vocab_size):
            log.info(line)

    def _build(self, fingerprint: dict[str, Any], folder: Path | None) -> tuple[Path | None, dict[str, float]]:
        """Read, learn the tokenizer, encode. With a cache folder the tokens are encoded straight into it (a
        corpus larger than memory passes through a block at a time) and read back memory-mapped; a cache
        that cannot be written costs the optimisation, not the run. The folder written (or None), and the
        seconds each step took."""
        seconds, t = {}, time.perf_counter()
        raw = self.source.read()
        seconds["read"], t = time.perf_counter() - t, time.perf_counter()
        if self.given_tokenizer_json is None:
            tok = build_tokenizer(raw.splits["train"], **self.tokenizer_cfg)
            self.tokenizer_json = tok.to_str()
            how = ", ".join(f"{k}={v}" for k, v in {"kind": "word", **self.tokenizer_cfg}.items())
        else:
            tok = tokenizer_from_json(self.given_tokenizer_json)
            how = "the checkpoint's tokenizer"
        seconds["tokenizer"], t = time.perf_counter() - t, time.perf_counter()
        if folder is not None:
            try:
                with cache.building(folder) as tmp:
                    stats = self._encode(raw, tok, tmp)
                    seconds["encode"], t = time.perf_counter() - t, time.perf_counter()
                    self.meta = self._meta(fingerprint, how, stats, raw, tok, dict(seconds))
                    cache.finish(tmp, folder, self.splits, self.tokenizer_json, self.meta)
                seconds["cache write"] = time.perf_counter() - t
                loaded = cache.load(folder)  # the folder's own files (another process may have written it first)
                if loaded is not None:
                    self.splits, self.tokenizer = loaded[0], loaded[3]
                return folder, seconds
            except OSError as err:
                log.warning("the corpus cache could not be written to %s: %s; this run goes on from memory "
                            "(set data.cache_dir to a writable folder, or to null to stop caching)",
                            folder, os_cause(err))  # fmt: skip
                t = time.perf_counter()
        stats = self._encode(raw, tok, None)
        seconds["encode"] = time.perf_counter() - t
        self.meta = self._meta(fingerprint, how, stats, raw, tok, dict(seconds))
        return None, seconds

    def _encode(self, raw, tok, folder: Path | None) -> dict:
        self.splits, stats = encode_splits(raw.splits, tok, self.min_len, self.max_len, folder)
        return stats

    def _meta(self, fingerprint, how: str, stats: dict, raw, tok, seconds: dict) -> dict[str, Any]:
        for key, n in raw.notes.undecodable_lines.items():  # counted while the files were read
            log.warning("%s: %d lines held bytes that are not UTF-8; they were replaced with U+FFFD", key, n)
        unk = special_ids(tok)["unk"]
        unks = {s: int(count_in_chunks(d.tokens, lambda t: np.count_nonzero(t == unk))) for s, d in self.splits.items()}
        return {
            "fingerprint": fingerprint, "min_len": self.min_len, "max_len": self.max_len, "tokenizer": how,
            "filters": {s: vars(st) for s, st in stats.items()},
            "unk": unks,
            "undecodable_lines": raw.notes.undecodable_lines, "seconds": seconds,
        }  # fmt: skip

    def prepare_data(self) -> None:
        # Lightning runs this on one process per node before setup(): the others then load the cache.
        if self.cache_dir is not None:
            self.prepare()

    def setup(self, stage: str | None = None) -> None:
        self.prepare()

    @property
    def vocab_size(self) -> int:
        self.prepare()
        return self.tokenizer.get_vocab_size()

    def target_counts(self) -> np.ndarray:
        """How often each token id is a training target: its occurrences, and <eos> once per sentence (in
        both modes every sentence ends with one); the adaptive softmax sorts its classes by these."""
        self.prepare()
        train = self.splits["train"]
        counts = count_in_chunks(train.tokens, lambda t: np.bincount(t, minlength=self.vocab_size)).astype(np.int64)
        counts[self.ids["eos"]] += len(train)
        return counts

    @property
    def ids(self) -> dict[str, int]:
        self.prepare()
        return special_ids(self.tokenizer)

    # -- loaders --------------------------------------------------------------------------------------
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

    def stream(self, split: str) -> np.ndarray:
        """A split as one token stream (sentences in corpus order, each followed by <eos>), joined once."""
        self.prepare()
        if split not in self._streams:
            data = self.splits[split]
            make = partial(to_stream, data, self.ids["eos"])
            length = len(data.tokens) + len(data)  # each sentence and its <eos>: a cached file's size is checked
            try:  # memory-mapped from the cache: made once, shared by the ranks and later runs
                self._streams[split] = cache.stream(self._cached_in, split, make, length) if self._cached_in else make()
            except OSError as err:
                log.warning("the stream of %s could not be written to the cache %s (%s): it is kept in memory",
                            split, self._cached_in, os_cause(err))  # fmt: skip
                self._streams[split] = make()
        return self._streams[split]

    def check_layout(self, num_replicas: int) -> None:
        """Stream mode: every split's columns and windows can be made on `num_replicas` processes (checked
        before training starts, so a bptt or column count that does not fit costs no epoch)."""
        if self.mode == "stream":
            for split in self.splits:
                self._stream(split, num_replicas, 0)

    def _stream(
        self, split: str, num_replicas: int | None = None, rank: int = 0
    ) -> tuple[StreamWindows, WindowSampler]:
        """This rank's columns of a split and the windows over them: training in batch_size columns per
        rank, evaluation in eval_batch_size columns shared by the ranks (so its numbers do not depend on
        the number of devices)."""
        stream = self.stream(split)
        if num_replicas is None:
            num_replicas, rank = self._ranks()
        train = split == "train"
        if train:
            columns = train_columns(stream, self.batch_size, num_replicas, rank)
            if self.bptt > columns.steps:
                raise UserError(
                    f"data.bptt={self.bptt} is longer than the training columns ({len(stream)} tokens in "
                    f"{self.batch_size * num_replicas} columns of {columns.steps} steps): lower data.bptt or "
                    "data.batch_size."
                )
        else:
            columns = eval_columns(stream, self.eval_batch_size, self.ids["pad"], split, num_replicas, rank)
        variable = self.variable_bptt and train
        epoch = getattr(self.trainer, "current_epoch", 0) if variable else 0  # made anew each epoch (see WindowSampler)
        windows = WindowSampler(columns.steps, self.bptt, variable, self.seed, epoch, num_replicas)
        return StreamWindows(columns, self.bptt, variable), windows

    def _loader(self, split: str) -> DataLoader:
        self.prepare()
        if self.mode == "stream":
            dataset, order = self._stream(split)
        else:
            ids = self.ids
            dataset = SentenceDataset(self.splits[split], ids["pad"], ids["sos"], ids["eos"])
            order = self.sampler(split)
        return (ResumableLoader if split == "train" else DataLoader)(
            dataset,
            batch_sampler=order,
            collate_fn=keep_batch,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # Each loader draws its workers' base seed from its own generator, not the global one, so
            # opening a loader never shifts the random stream that dropout uses (exact resume).
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")
