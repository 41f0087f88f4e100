"""The encoded-corpus cache: hit on a second run, rebuilt when a source or setting changes, never trusted
when half-written."""

import os
import time

import numpy as np
import pytest

from rnnlm.data import SentenceDataModule, cache
from rnnlm.data.sources import TextFiles


@pytest.fixture
def corpus(tmp_path):
    paths = {}
    for split, n in (("train", 60), ("val", 10), ("test", 10)):
        paths[f"{split}_path"] = str(tmp_path / f"{split}.txt")
        (tmp_path / f"{split}.txt").write_text("\n".join(f"{split} sentence {i % 7} here" for i in range(n)))
    return paths


def dm(corpus, cache_dir, **kw):
    return SentenceDataModule(source="text", cache_dir=str(cache_dir), **corpus, **kw)


def test_second_run_loads_the_cache_without_reading_the_source(corpus, tmp_path, monkeypatch):
    first = dm(corpus, tmp_path / "c")
    first.prepare()
    assert first.cache_folder.is_dir() and (first.cache_folder / "tokenizer.json").is_file()

    def no_read(self):
        raise AssertionError("the source was read again")

    monkeypatch.setattr(TextFiles, "read", no_read)
    second = dm(corpus, tmp_path / "c")
    second.prepare()
    assert second.tokenizer_json == first.tokenizer_json and second.meta == first.meta
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(second.splits[s].tokens, first.splits[s].tokens)
        np.testing.assert_array_equal(second.splits[s].offsets, first.splits[s].offsets)


def test_a_changed_file_or_setting_gets_its_own_entry(corpus, tmp_path):
    base = dm(corpus, tmp_path / "c").cache_folder
    assert dm(corpus, tmp_path / "c").cache_folder == base
    assert dm(corpus, tmp_path / "c", max_len=3).cache_folder != base
    assert dm(corpus, tmp_path / "c", tokenizer={"kind": "char"}).cache_folder != base
    assert dm(corpus, tmp_path / "c", tokenizer_json="{}").cache_folder != base
    os.utime(corpus["val_path"], ns=(time.time_ns(), time.time_ns() + 10**9))  # touched
    assert dm(corpus, tmp_path / "c").cache_folder != base
    # settings that only change batching share the encoded corpus
    assert (
        dm(corpus, tmp_path / "c", batch_size=3, bucket_width=4).cache_folder == dm(corpus, tmp_path / "c").cache_folder
    )


def test_a_killed_write_leaves_nothing_a_later_run_trusts(corpus, tmp_path, monkeypatch):
    a = dm(corpus, tmp_path / "c")
    real_save = np.save

    def dies_halfway(path, arr, *args, **kw):
        if "val" in str(path):
            raise KeyboardInterrupt  # the run is killed mid-write
        real_save(path, arr, *args, **kw)

    monkeypatch.setattr(np, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        a.prepare()
    assert not a.cache_folder.exists()
    assert list((tmp_path / "c").iterdir()) == []  # the temporary folder is gone too
    monkeypatch.setattr(np, "save", real_save)
    b = dm(corpus, tmp_path / "c")
    b.prepare()
    assert cache.load(b.cache_folder) is not None


def test_a_damaged_entry_is_rebuilt(corpus, tmp_path):
    a = dm(corpus, tmp_path / "c")
    a.prepare()
    (a.cache_folder / "train.tokens.npy").write_bytes(b"garbage")
    b = dm(corpus, tmp_path / "c")
    b.prepare()
    np.testing.assert_array_equal(b.splits["train"].tokens, a.splits["train"].tokens)
    assert cache.load(b.cache_folder) is not None
