"""The encoded-corpus cache: hit on a second run, rebuilt when a source or setting changes, never trusted
when half-written, and a damaged entry (any file cut, emptied, missing or garbled) rebuilt with a warning."""

import json
import logging
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


def rewrite(name: str, change):
    """A damage: the file `name` of a cache folder rewritten as change(its bytes)."""
    return lambda folder: (folder / name).write_bytes(change((folder / name).read_bytes()))


def offsets(split: str, change):
    """A damage: the split's offsets replaced by change(them), saved as a sound .npy."""
    return lambda folder: np.save(folder / f"{split}.offsets.npy", change(np.load(folder / f"{split}.offsets.npy")))


def meta(change):
    """A damage: meta.json rewritten as change(its contents), still valid JSON."""

    def damage(folder):
        m = json.loads((folder / "meta.json").read_text())
        (folder / "meta.json").write_text(json.dumps(change(m)))

    return damage


def swap(o):
    o[1], o[2] = o[2], o[1]  # [0, 8, 4, ...]: decreasing
    return o


NOT_OFFSETS = "val.offsets.npy are not the offsets of 10 sentences in 40 tokens"
META = "meta.json does not hold a token and <unk> count for each of the splits ['test', 'train', 'val']"
DAMAGES = [  # (id, damage, the warning's reason or its start)
    ("offsets empty", rewrite("val.offsets.npy", lambda b: b""), "val.offsets.npy: EOFError: No data left in file"),
    ("offsets cut", rewrite("val.offsets.npy", lambda b: b[:-5]), "val.offsets.npy: ValueError: Failed to read all"),
    ("offsets header cut", rewrite("val.offsets.npy", lambda b: b[:20]), "val.offsets.npy: ValueError: EOF: reading"),
    ("offsets missing", lambda f: (f / "val.offsets.npy").unlink(), "val.offsets.npy: FileNotFoundError"),
    ("tokens empty", rewrite("train.tokens.bin", lambda b: b""), "train.tokens.bin holds 0 bytes, not 240 tokens"),
    ("tokens cut", rewrite("train.tokens.bin", lambda b: b[:-6]), "train.tokens.bin holds 954 bytes, not 240 tokens"),
    ("tokens long", rewrite("train.tokens.bin", lambda b: b + bytes(8)), "train.tokens.bin holds 968 bytes, not 240"),
    ("tokens missing", lambda f: (f / "test.tokens.bin").unlink(),
     "token files of the splits ['train', 'val'], and meta.json lists ['test', 'train', 'val']"),
    ("meta empty", rewrite("meta.json", lambda b: b""), "meta.json: JSONDecodeError: Expecting value"),
    ("meta cut", rewrite("meta.json", lambda b: b[: len(b) // 2]), "meta.json: JSONDecodeError"),
    ("meta missing", lambda f: (f / "meta.json").unlink(), "meta.json: FileNotFoundError"),
    ("meta not UTF-8", rewrite("meta.json", lambda b: b"\xff" + b), "meta.json: UnicodeDecodeError"),
    ("tokenizer empty", rewrite("tokenizer.json", lambda b: b""), "tokenizer.json: EOF while parsing"),
    ("tokenizer cut", rewrite("tokenizer.json", lambda b: b[: len(b) // 2]), "tokenizer.json: EOF while parsing"),
    ("tokenizer not UTF-8", rewrite("tokenizer.json", lambda b: b"\xff" + b), "tokenizer.json: UnicodeDecodeError"),
    ("tokenizer not one", rewrite("tokenizer.json", lambda b: b"{}"), "tokenizer.json: Model missing"),
    ("tokenizer without <eos>", rewrite("tokenizer.json", lambda b: b.replace(b'"<eos>"', b'"<eos2>"')),
     "tokenizer.json: the tokenizer lacks the special tokens ['<eos>']"),
    ("offsets end past the tokens", offsets("val", lambda o: np.r_[o[:-1], o[-1] + 1]), NOT_OFFSETS),
    ("offsets start past 0", offsets("val", lambda o: np.r_[1, o[1:]]), NOT_OFFSETS),
    ("offsets decreasing", offsets("val", swap), NOT_OFFSETS),
    ("offsets int32", offsets("val", lambda o: o.astype(np.int32)), NOT_OFFSETS),
    ("offsets 2-d", offsets("val", lambda o: o[None, :]), NOT_OFFSETS),
    ("offsets of one sentence fewer", offsets("val", lambda o: np.delete(o, 1)), NOT_OFFSETS),
    ("meta a list", meta(lambda m: [m]),
     "token files of the splits ['test', 'train', 'val'], and meta.json lists no token counts"),
    ("meta tokens a list", meta(lambda m: {**m, "tokens": list(m["tokens"].values())}),
     "token files of the splits ['test', 'train', 'val'], and meta.json lists no token counts"),
    ("meta token count a string", meta(lambda m: {**m, "tokens": {**m["tokens"], "val": "40"}}), META),
    ("meta lacks a split", meta(lambda m: {**m, "tokens": {k: v for k, v in m["tokens"].items() if k != "val"}}),
     "token files of the splits ['test', 'train', 'val'], and meta.json lists ['test', 'train']"),
    ("meta lacks the filters", meta(lambda m: {k: v for k, v in m.items() if k != "filters"}),
     "meta.json does not hold the filter counts of the splits ['test', 'train', 'val']"),
    ("meta lacks an unk count", meta(lambda m: {**m, "unk": {"train": 0}}), META),
]  # fmt: skip


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def encoding(d) -> dict:
    """What a prepared datamodule holds, copied (its tokens are the cache's pages)."""
    splits = {s: (np.array(x.tokens), np.array(x.offsets)) for s, x in d.splits.items()}
    return {
        "splits": splits,
        "tokenizer": d.tokenizer_json,
        "meta": {k: v for k, v in d.meta.items() if k != "seconds"},
    }


def assert_same(got: dict, expected: dict) -> None:
    assert got["tokenizer"] == expected["tokenizer"] and got["meta"] == expected["meta"]
    assert sorted(got["splits"]) == sorted(expected["splits"]) == ["test", "train", "val"]
    for s, (tokens, offs) in expected["splits"].items():
        np.testing.assert_array_equal(got["splits"][s][0], tokens)
        np.testing.assert_array_equal(got["splits"][s][1], offs)
        assert got["splits"][s][1].dtype == np.int64


@pytest.mark.parametrize("damage, reason", [d[1:] for d in DAMAGES], ids=[d[0] for d in DAMAGES])
def test_a_damaged_entry_is_ignored_with_one_warning_and_rebuilt(corpus, tmp_path, caplog, damage, reason):
    a = dm(corpus, tmp_path / "c")
    a.prepare()
    folder, expected = a.cache_folder, encoding(a)
    assert expected["splits"]["val"][1].tolist() == list(range(0, 41, 4))  # 10 sentences of 4 words
    del a  # its tokens map the files about to be damaged
    damage(folder)
    caplog.clear()
    b = dm(corpus, tmp_path / "c")
    b.prepare()
    (warning,) = warnings(caplog)
    assert warning.startswith(f"ignoring the damaged corpus cache {folder} ({reason}")
    assert warning.endswith("); rebuilding it")
    assert_same(encoding(b), expected)
    assert list((tmp_path / "c").iterdir()) == [folder]  # replaced in place; nothing half-written beside it
    caplog.clear()
    c = dm(corpus, tmp_path / "c")
    c.prepare()  # the rebuilt entry is sound: loaded, no warning
    assert warnings(caplog) == [] and isinstance(c.splits["train"].tokens, np.memmap)
    assert_same(encoding(c), expected)


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
    from rnnlm.data import prepare
    from rnnlm.data.stream import to_stream

    first = dm(corpus, tmp_path / "c", mode="stream", batch_size=2)
    first.prepare()
    expected = to_stream(first.splits["train"], first.ids["eos"])
    np.testing.assert_array_equal(first.stream("train"), expected)
    assert (first.cache_folder / "train.stream.bin").is_file()
    monkeypatch.setattr(prepare, "to_stream", lambda *a: pytest.fail("the stream was made again"))
    second = dm(corpus, tmp_path / "c", mode="stream", batch_size=2)
    stream = second.stream("train")
    assert isinstance(stream, np.memmap)
    np.testing.assert_array_equal(stream, expected)


STREAM_DAMAGES = [(lambda b: b"", 0), (lambda b: b[:-4], 196), (lambda b: b + bytes(4), 204)]


@pytest.mark.parametrize("change, size", STREAM_DAMAGES, ids=["empty", "cut", "long"])
def test_a_stream_file_of_the_wrong_size_is_made_again(corpus, tmp_path, caplog, change, size):
    from rnnlm.data.stream import to_stream

    first = dm(corpus, tmp_path / "c", mode="stream", batch_size=2)
    first.prepare()
    expected = to_stream(first.splits["val"], first.ids["eos"])
    assert len(expected) == 50  # 10 sentences of 4 words and an <eos>
    first.stream("val")
    folder = first.cache_folder
    path = folder / "val.stream.bin"
    del first
    path.write_bytes(change(path.read_bytes()))
    caplog.clear()
    second = dm(corpus, tmp_path / "c", mode="stream", batch_size=2)
    np.testing.assert_array_equal(second.stream("val"), expected)
    assert warnings(caplog) == [
        f"ignoring the damaged stream val.stream.bin of the corpus cache {folder} ({size} bytes, "
        "not the 200 of 50 tokens); making it again"
    ]
    assert path.stat().st_size == 200
    files = [f"{s}.{kind}" for s in ("test", "train", "val") for kind in ("offsets.npy", "tokens.bin")]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*files, "meta.json", "tokenizer.json", path.name])
    caplog.clear()
    third = dm(corpus, tmp_path / "c", mode="stream", batch_size=2)
    np.testing.assert_array_equal(third.stream("val"), expected)
    assert warnings(caplog) == []


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
