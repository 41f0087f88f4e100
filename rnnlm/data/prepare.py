"""Preparing the corpus: read the source, learn the tokenizer (or take the one given), encode the splits, and keep
the result in the on-disk cache (rnnlm.data.cache), which a later run with the same source and settings loads
instead. Stream mode's streams (each split joined once) are added to the same cache entry."""

from __future__ import annotations

import hashlib
import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rnnlm.data import cache
from rnnlm.data.catalog import make_source
from rnnlm.data.corpus import EncodedSplit, count_in_chunks, encode_splits
from rnnlm.data.stream import to_stream
from rnnlm.data.summary import describe
from rnnlm.data.tokenizer import build_tokenizer, check_tokenizer_settings, special_ids, tokenizer_from_json
from rnnlm.files import os_cause

log = logging.getLogger(__name__)


class PreparedCorpus:
    """A source's splits encoded: made by prepare() (idempotent), or loaded from the cache.

    The tokenizer has one story. `tokenizer_json` is the tokenizer the data is encoded with, as JSON. Given
    (`tokenizer_given`: a checkpoint's, so that the data matches its vocabulary), it is used as it is and nothing
    is learned; otherwise prepare() learns one from the training split with `tokenizer_settings` and sets it.
    `tokenizer` is the same one parsed, once prepared."""

    def __init__(
        self,
        source: str = "ptb",
        tokenizer: dict[str, Any] | None = None,
        tokenizer_json: str | None = None,
        min_len: int = 1,
        max_len: int | None = None,
        cache_dir: str | None = None,
        **source_args: Any,
    ) -> None:
        """`tokenizer` holds build settings (kind, vocab_size, ...), unused when `tokenizer_json` is given.
        `source_args` go to the source (paths, ...). `cache_dir` keeps encoded corpora between runs (None:
        encode every time)."""
        self.tokenizer_given = tokenizer_json is not None
        if not self.tokenizer_given:
            check_tokenizer_settings(**(tokenizer or {}))
        self.source = make_source(source, **source_args)  # checks paths before anything is read
        self.tokenizer_settings = dict(tokenizer or {})
        self.tokenizer_json = tokenizer_json
        self.tokenizer = None
        self.min_len, self.max_len = min_len, max_len
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else None
        self.splits: dict[str, EncodedSplit] | None = None
        self.meta: dict[str, Any] = {}
        self._cached_in: Path | None = None  # the cache folder this corpus came from, for the stream files
        self._streams: dict[str, np.ndarray] = {}  # each split joined once, for every loader

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the encoded corpus: the source's files and settings, the tokenizer."""
        if self.tokenizer_given:
            tokenizer = {"json_sha256": hashlib.sha256(self.tokenizer_json.encode()).hexdigest()}
        else:
            tokenizer = self.tokenizer_settings
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
        if self.tokenizer_given:
            tok = tokenizer_from_json(self.tokenizer_json)
            how = "the checkpoint's tokenizer"
        else:
            tok = build_tokenizer(raw.splits["train"], **self.tokenizer_settings)
            self.tokenizer_json = tok.to_str()
            how = ", ".join(f"{k}={v}" for k, v in {"kind": "word", **self.tokenizer_settings}.items())
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

    @property
    def vocab_size(self) -> int:
        self.prepare()
        return self.tokenizer.get_vocab_size()

    @property
    def ids(self) -> dict[str, int]:
        """The specials' ids (pad, unk, sos, eos)."""
        self.prepare()
        return special_ids(self.tokenizer)

    def target_counts(self) -> np.ndarray:
        """How often each token id is a training target: its occurrences, and <eos> once per sentence (in
        both modes every sentence ends with one); the adaptive softmax sorts its classes by these."""
        self.prepare()
        train = self.splits["train"]
        counts = count_in_chunks(train.tokens, lambda t: np.bincount(t, minlength=self.vocab_size)).astype(np.int64)
        counts[self.ids["eos"]] += len(train)
        return counts

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
