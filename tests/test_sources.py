"""Sources: plain text (lines or prose), CSV/TSV/Parquet tables, the aclImdb folder; carved val/test."""

import pandas as pd
import pytest

from rnnlm.data.imdb import IMDB
from rnnlm.data.sources import TextFiles
from rnnlm.data.tables import TableFile
from rnnlm.errors import UserError

PROSE = (
    "The film opens in Paris. Mr. Smith, a retired spy, wants one last job!\n"
    "Does he get it? Nobody knows.\n\n"
    "A second paragraph, hard-wrapped\nacross two lines. It ends here."
)


def test_text_lines_are_sentences(tmp_path):
    (tmp_path / "a.txt").write_text("one two\n\n  three four  \n")
    src = TextFiles(str(tmp_path / "a.txt"), str(tmp_path / "a.txt"), str(tmp_path / "a.txt"))
    lines = src.read().splits["train"]  # read a block at a time, each time it is iterated
    assert list(lines) == list(lines) == ["one two", "three four"]


def test_text_prose_is_split_into_sentences(tmp_path):
    (tmp_path / "a.txt").write_text(PROSE)
    p = str(tmp_path / "a.txt")
    sents = TextFiles(p, p, p, sentence_split=True, lowercase=True).read().splits["train"]
    assert sents == [
        "the film opens in paris.",
        "mr. smith, a retired spy, wants one last job!",
        "does he get it?",
        "nobody knows.",
        "a second paragraph, hard-wrapped across two lines.",
        "it ends here.",
    ]


def test_missing_val_and_test_are_carved_from_train_deterministically(tmp_path):
    lines = [f"sentence number {i}" for i in range(200)]
    (tmp_path / "train.txt").write_text("\n".join(lines))
    p = str(tmp_path / "train.txt")

    def read(seed):  # each split read from the file, a block at a time
        return {s: list(lines) for s, lines in TextFiles(p, val_fraction=0.1, test_fraction=0.05, seed=seed)
                .read().splits.items()}  # fmt: skip

    a, b, c = read(3), read(3), read(4)
    assert a == b and a["val"] != c["val"]
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (170, 20, 10)
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(lines)


def test_a_given_val_file_is_used_and_only_test_is_carved(tmp_path):
    (tmp_path / "train.txt").write_text("\n".join(f"t {i}" for i in range(100)))
    (tmp_path / "val.txt").write_text("v 1\nv 2\n")
    splits = TextFiles(str(tmp_path / "train.txt"), str(tmp_path / "val.txt"), test_fraction=0.1).read().splits
    splits = {s: list(lines) for s, lines in splits.items()}
    assert splits["val"] == ["v 1", "v 2"] and len(splits["test"]) == 10 and len(splits["train"]) == 90


@pytest.mark.parametrize("ext", ["csv", "tsv", "parquet"])
def test_tables_split_each_row_and_carve_rows(tmp_path, ext):
    rows = [f"Review {i} starts here. It has two sentences." for i in range(40)]
    df = pd.DataFrame({"id": range(40), "review": rows, "label": ["pos"] * 40})
    path = tmp_path / f"reviews.{ext}"
    if ext == "parquet":
        df.to_parquet(path)
    else:
        df.to_csv(path, sep="\t" if ext == "tsv" else ",", index=False)
    splits = TableFile(str(path), text_column="review", val_fraction=0.1, test_fraction=0.1).read().splits
    assert [len(splits[s]) for s in ("train", "val", "test")] == [64, 8, 8]  # 2 sentences a row
    assert splits["train"][:2] == ["Review 0 starts here.", "It has two sentences."]
    # both sentences of a row stay in one split, and no row is in two splits
    rows_of = {}
    for s, sents in splits.items():
        assert all(x == "It has two sentences." for x in sents[1::2])
        rows_of[s] = {x.split()[1] for x in sents[0::2]}
    assert sum(map(len, rows_of.values())) == len(set().union(*rows_of.values())) == 40


def test_table_rows_without_text_are_skipped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('text\n"One."\n\n""\n"Two. Three."\n' + "".join(f'"Row {i}."\n' for i in range(20)))
    splits = TableFile(str(path), val_fraction=0.1, test_fraction=0.1).read().splits
    assert sum(len(v) for v in splits.values()) == 23


def make_acl_imdb(root, n=20):
    for folder in ("train/pos", "train/neg", "train/unsup", "test/pos", "test/neg"):
        d = root / "aclImdb" / folder
        d.mkdir(parents=True)
        for i in range(n):
            (d / f"{i}_7.txt").write_text(
                f"This {folder.replace('/', ' ')} film number {i} was FUN.<br /><br />I would watch it again. Wow!"
            )
    return root


def test_imdb_layout_breaks_removed_lowercased_split(tmp_path):
    root = make_acl_imdb(tmp_path)
    splits = IMDB(str(root), val_fraction=0.1).read().splits
    assert len(splits["test"]) == 3 * 20 * 2  # three sentences a review
    assert len(splits["val"]) == 3 * 6 and len(splits["train"]) == 3 * 54
    assert "this test pos film number 0 was fun." in splits["test"]
    assert "i would watch it again." in splits["train"]
    assert not any("<br" in s for sents in splits.values() for s in sents)
    without_unsup = IMDB(str(root / "aclImdb"), include_unsup=False, val_fraction=0.1).read().splits
    assert len(without_unsup["train"]) + len(without_unsup["val"]) == 3 * 40


def test_a_large_text_file_is_read_a_block_at_a_time_and_carved_as_in_memory(tmp_path, monkeypatch):
    from rnnlm.data.reading import LineFile, ReadNotes, carve, carve_lines, nonblank_lines, read_text

    lines = [f"sentence number {i}" + (" é" if i % 7 else "") for i in range(1000)]
    path = tmp_path / "train.txt"
    path.write_text("\n\n".join(lines) + "\n")
    monkeypatch.setattr(LineFile, "BLOCK_BYTES", 100)  # many blocks, lines and characters cut at their edges
    streamed = LineFile(path, "data.train_path", ReadNotes())
    assert list(streamed) == nonblank_lines(read_text(path, "data.train_path", ReadNotes()))
    fractions = {"val": 0.05, "test": 0.1}
    rest, carved = carve_lines(streamed, fractions, 3, "sentences")
    expected_rest, expected = carve(lines, fractions, 3, "sentences")
    assert list(rest) == expected_rest and {s: list(c) for s, c in carved.items()} == expected
    assert [len(expected[s]) for s in ("val", "test")] == [50, 100]


def test_prose_settings_are_accepted_with_each_sources_defaults_and_imdb_refuses_the_ones_it_fixes(tmp_path):
    from omegaconf import OmegaConf

    from rnnlm.run.config_checks import check_data

    prose = {"sentence_split", "language", "lowercase", "val_fraction", "test_fraction", "seed"}
    for source in ("text", "csv", "hf"):
        check_data(OmegaConf.create({"source": source, **dict.fromkeys(prose - {"val_fraction", "test_fraction"})}))
    check_data(OmegaConf.create({"source": "imdb", "language": "de", "lowercase": False, "val_fraction": 0.1}))
    for key in ("sentence_split", "test_fraction"):
        with pytest.raises(UserError, match=f"data.{key} is not a setting of data: remove it or use one of "):
            check_data(OmegaConf.create({"source": "imdb", key: 0.1}))
    with pytest.raises(TypeError, match="IMDB.__init__.. got an unexpected keyword argument 'test_fraction'"):
        IMDB(str(tmp_path), test_fraction=0.1)
    (tmp_path / "a.csv").write_text("text\nHi.\n")
    assert TableFile(str(tmp_path / "a.csv")).sentence_split and not TextFiles(str(tmp_path / "a.csv")).sentence_split
    assert IMDB.prose_defaults.lowercase and IMDB.prose_defaults.sentence_split
