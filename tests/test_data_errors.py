"""Bad data input: each case ends in one sentence naming the thing and the fix, and leaves no cache entry."""

import logging

import pytest

from rnnlm.data import SentenceDataModule
from rnnlm.errors import UserError


def good(tmp_path, name="good.txt"):
    p = tmp_path / name
    p.write_text("\n".join(f"a fine sentence number {i}" for i in range(30)))
    return str(p)


def text(tmp_path, **kw):
    args = {"train_path": good(tmp_path), "val_path": good(tmp_path), "test_path": good(tmp_path), **kw}
    return dict(source="text", **args)


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


CASES = {
    "missing path": (lambda t: text(t, train_path=str(t / "nope.txt")), "data.train_path=.*nope.txt does not exist"),
    "a directory": (lambda t: text(t, val_path=str(t)), "data.val_path=.* is a directory"),
    "an empty file": (lambda t: text(t, test_path=write(t, "e.txt", b"")), "data.test_path=.*e.txt is empty"),
    "only blank lines": (
        lambda t: text(t, train_path=write(t, "b.txt", b"\n  \n\t\n")),
        "data.train_path=.*b.txt holds only blank lines",
    ),
    "length limits drop everything": (
        lambda t: {**text(t), "min_len": 2, "max_len": 3},
        r"removed every train sentence \(0 shorter than data.min_len=2, 30 longer than data.max_len=3\)",
    ),
    "max_len below min_len": (lambda t: {**text(t), "min_len": 5, "max_len": 3}, "data.max_len=3 is below"),
    "csv without the column": (
        lambda t: dict(source="csv", path=write(t, "r.csv", b"id,review\n1,Good film.\n"), text_column="text"),
        r"has no column 'text' \(it has: id, review\): set data.text_column",
    ),
    "unknown table extension": (
        lambda t: dict(source="csv", path=write(t, "r.xlsx", b"x")),
        "unknown extension '.xlsx'",
    ),
    "empty csv": (lambda t: dict(source="csv", path=write(t, "r.csv", b"")), "data.path=.*r.csv is empty"),
    "fraction leaves val empty": (
        lambda t: dict(source="text", train_path=good(t), val_fraction=0.01),
        r"data.val_fraction=0.01 leaves the val split empty \(30 sentences in data.train_path\)",
    ),
    "fractions leave no training data": (
        lambda t: dict(source="text", train_path=good(t), val_fraction=0.5, test_fraction=0.5),
        "leave nothing to train on",
    ),
    "vocabulary smaller than the specials": (
        lambda t: {**text(t), "tokenizer": {"kind": "word", "vocab_size": 4}},
        "tokenizer.vocab_size=4 leaves no room for tokens after the 4 specials",
    ),
    "imdb folder without aclImdb": (lambda t: dict(source="imdb", root=str(t)), "lacks aclImdb/train/pos/"),
    "unknown source": (lambda t: dict(source="wiki"), "data.source=wiki is not known"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_data_input_is_one_clear_sentence(case, tmp_path):
    make, message = CASES[case]
    cache_dir = tmp_path / "cache"
    with pytest.raises(UserError, match=message) as err:
        SentenceDataModule(cache_dir=str(cache_dir), **make(tmp_path)).prepare()
    assert "\n" not in str(err.value) and str(err.value).endswith(".")
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_bytes_that_are_not_utf8_are_replaced_and_counted(tmp_path, caplog):
    bad = write(tmp_path, "latin1.txt", "café au lait\nplain line\nnaïve\n".encode("latin-1") + b"ok\n")
    dm = SentenceDataModule(**text(tmp_path, train_path=bad))
    with caplog.at_level(logging.INFO):
        dm.prepare()
    assert "data.train_path: 2 lines held bytes that are not UTF-8" in caplog.text
    assert dm.meta["undecodable_lines"] == {"data.train_path": 2}
    assert len(dm.splits["train"]) == 4
