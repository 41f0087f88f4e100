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
    expected = np.array(a.splits["train"].tokens)  # a copy: a's own tokens are the file's pages
    tokens = a.cache_folder / "train.tokens.bin"
    tokens.write_bytes(tokens.read_bytes()[:-6])  # cut short
    assert cache.load(a.cache_folder) is None
    b = dm(corpus, tmp_path / "c")
    b.prepare()
    np.testing.assert_array_equal(b.splits["train"].tokens, expected)
    assert cache.load(b.cache_folder) is not None


def test_tokens_are_encoded_into_the_cache_and_read_back_memory_mapped(corpus, tmp_path):
    a = dm(corpus, tmp_path / "c")
    a.prepare()
    b = dm(corpus, tmp_path / "c")
    b.prepare()
    for split in ("train", "val", "test"):
        for loaded in (a, b):  # the first run reads its own files back too
            tokens = loaded.splits[split].tokens
            assert isinstance(tokens, np.memmap) and str(tokens.filename) == str(a.cache_folder / f"{split}.tokens.bin")
    assert list((tmp_path / "c").iterdir()) == [a.cache_folder]  # no temporary folder left


def test_the_stream_is_made_once_per_cache_and_memory_mapped(corpus, tmp_path, monkeypatch):
    from rnnlm.data import datamodule
    from rnnlm.data.stream import to_stream

    first = dm(corpus, tmp_path / "c", mode="stream", batch_size=2)
    first.prepare()
    expected = to_stream(first.splits["train"], first.ids["eos"])
    np.testing.assert_array_equal(first.stream("train"), expected)
    assert (first.cache_folder / "train.stream.bin").is_file()
    monkeypatch.setattr(datamodule, "to_stream", lambda *a: pytest.fail("the stream was made again"))
    second = dm(corpus, tmp_path / "c", mode="stream", batch_size=2)
    stream = second.stream("train")
    assert isinstance(stream, np.memmap)
    np.testing.assert_array_equal(stream, expected)


def test_a_memory_mapped_split_travels_to_a_spawned_process_as_its_file(corpus, tmp_path):
    import pickle

    a = dm(corpus, tmp_path / "c")
    a.prepare()
    split = a.splits["train"]
    copy = pickle.loads(pickle.dumps(split))
    assert len(pickle.dumps(split)) < split.tokens.nbytes  # the file's name, not its tokens
    assert isinstance(copy.tokens, np.memmap) and str(copy.tokens.filename) == str(split.tokens.filename)
    np.testing.assert_array_equal(copy.tokens, split.tokens)
    np.testing.assert_array_equal(copy.offsets, split.offsets)
