"""data=hf (the `datasets` library: local folders, builders with data files, Hub names offline) and the WikiText
presets (a folder of wiki.*.tokens files, or a Hub-style snapshot), as the published numbers read them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnlm.data import SentenceDataModule
from rnnlm.errors import UserError
from tests.conftest import compose_config, make_sentences, train_here

pytest.importorskip("datasets")

# A WikiText-like corpus: headings, blank lines, the files' own <unk>, lines with a leading space.
WIKI = {
    "train": ["", " = Valkyria Chronicles III = ", "", " Senjo no Valkyria 3 : <unk> Chronicles ( Japanese ) ",
              " the game began development in 2010 , carrying over a large portion of the work ", "",
              " = = Gameplay = = ", "", " the game is a tactical role playing game "],
    "valid": ["", " = Homarus gammarus = ", "", " the lobster is a species of <unk> clawed lobster ", ""],
    "test": ["", " = Robert Boulter = ", "", " Robert Boulter is an English film actor ", ""],
}  # fmt: skip
HUB_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


@pytest.fixture(scope="module")
def wiki_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("wikitext-2")
    for split, lines in WIKI.items():
        (d / f"wiki.{split}.tokens").write_text("\n".join(lines) + "\n")
    return d


@pytest.fixture(scope="module")
def wiki_snapshot(tmp_path_factory):
    """A folder laid out as the Hub's Salesforce/wikitext: one parquet file per split and config, rows = lines."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path_factory.mktemp("snapshot")
    (d / "wikitext-2-v1").mkdir()
    for split, lines in WIKI.items():
        rows = [line + "\n" if line else "" for line in lines]  # as the Hub's rows: each line with its newline
        pq.write_table(pa.table({"text": rows}), d / "wikitext-2-v1" / f"{HUB_SPLITS[split]}-00000-of-00001.parquet")
    files = "".join(f"  - split: {s}\n    path: wikitext-2-v1/{s}-*\n" for s in HUB_SPLITS.values())
    (d / "README.md").write_text(f"---\nconfigs:\n- config_name: wikitext-2-v1\n  data_files:\n{files}---\n")
    return d


def prepared(**kwargs) -> SentenceDataModule:
    dm = SentenceDataModule(cache_dir=None, **kwargs)
    dm.prepare()
    return dm


def test_wikitext_reads_every_line_as_the_published_numbers_do(wiki_files):
    dm = prepared(source="wikitext", size=2, root=str(wiki_files), mode="stream", min_len=0, batch_size=2)
    tok, eos = dm.tokenizer, dm.ids["eos"]
    for split, name in (("train", "train"), ("val", "valid"), ("test", "test")):
        lines = WIKI[name]
        stream = dm.stream(split)
        # pytorch/examples' and AWD-LSTM's count: every word, plus an <eos> for every line, blank ones too
        assert len(stream) == sum(len(line.split()) + 1 for line in lines)
        assert int((stream == eos).sum()) == len(lines)
        expected = [w for line in lines for w in [*line.split(), "<eos>"]]
        assert [tok.id_to_token(int(i)) if w in tok.get_vocab() else w for i, w in zip(stream, expected)] == expected
    vocab = tok.get_vocab()
    assert "Homarus" not in vocab and "Chronicles" in vocab  # counted from train only
    train_words = {w for line in WIKI["train"] for w in line.split()}
    unseen = [w for line in WIKI["valid"] for w in line.split() if w not in train_words or w == "<unk>"]
    val = [tok.id_to_token(int(i)) for i in dm.stream("val")]
    assert val.count("<unk>") == len(unseen) == 7  # the file's own <unk> and every word train lacks: one token
    assert vocab["<unk>"] == dm.ids["unk"]


def test_wikitext_from_a_hub_snapshot_equals_the_files(wiki_files, wiki_snapshot):
    files = prepared(source="wikitext", root=str(wiki_files), mode="stream", min_len=0, batch_size=2)
    hub = prepared(source="wikitext", name=str(wiki_snapshot), mode="stream", min_len=0, batch_size=2)
    assert files.tokenizer.get_vocab() == hub.tokenizer.get_vocab()
    for split in ("train", "val", "test"):
        assert np.array_equal(files.stream(split), hub.stream(split))


def test_a_wikitext_run_trains_in_stream_mode(wiki_files, tmp_path):
    from rnnlm.run.evaluate import evaluate

    data = ["data=wikitext2", f"data.root={wiki_files}", "data.batch_size=2", "data.eval_batch_size=1", "data.bptt=4"]
    metrics = train_here(*data, "debug=tiny", run_dir=tmp_path / "run")
    # eval.py on the best checkpoint, the same files read again as a stream, gives the test stage's number.
    best = json.loads((tmp_path / "run" / "results.json").read_text())["best_checkpoint"]
    got = evaluate(compose_config(f"ckpt_path={best}", *data, "splits=[test]", "trainer.accelerator=cpu",
                                  config="eval", run_dir=tmp_path / "eval"))  # fmt: skip
    assert got["test/ppl"] == pytest.approx(metrics["test/ppl"], rel=1e-5)


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("hf_folder")
    for split, n, seed in (("train", 200, 0), ("validation", 30, 1), ("test", 30, 2)):
        (d / f"{split}.txt").write_text("\n".join(make_sentences(n, seed)) + "\n\n")
    return d


def test_a_local_folder_reads_like_the_text_source(hf_folder, tmp_path):
    hf = prepared(source="hf", name=str(hf_folder))
    names = {"train": "train", "val": "validation", "test": "test"}
    text = prepared(source="text", **{f"{s}_path": str(hf_folder / f"{n}.txt") for s, n in names.items()})
    assert hf.tokenizer.get_vocab() == text.tokenizer.get_vocab()
    for split in ("train", "val", "test"):
        assert np.array_equal(hf.splits[split].tokens, text.splits[split].tokens)
        assert np.array_equal(hf.splits[split].offsets, text.splits[split].offsets)


def test_a_builder_with_data_files_and_carved_splits(hf_folder, tmp_path):
    dm = prepared(source="hf", name="text", data_files={"train": str(hf_folder / "train.txt")},
                  splits={"val": None, "test": None}, val_fraction=0.1, test_fraction=0.1)  # fmt: skip
    sizes = {s: len(dm.splits[s]) for s in ("train", "val", "test")}
    assert sizes == {"train": 160, "val": 20, "test": 20}  # 200 lines (the blank one dropped), 10% and 10% carved


def test_the_configs_data_files_take_one_split_from_the_command_line(hf_folder, tmp_path):
    """docs/DATA.md's `data.data_files.train=a.txt` composes (the config lists the splits, each null) and reads
    like the builder given that one file: the other splits' nulls are dropped."""
    from rnnlm.run.build import build_datamodule
    from tests.conftest import compose_config

    cfg = compose_config("data=hf", "data.name=text", f"data.data_files.train={hf_folder / 'train.txt'}",
                         "data.splits.val=null", "data.splits.test=null", "data.val_fraction=0.1",
                         "data.test_fraction=0.1", f"data.cache_dir={tmp_path}")  # fmt: skip
    dm = build_datamodule(cfg, None)
    assert dm.source.data_files == {"train": str(hf_folder / "train.txt")}
    dm.prepare()
    assert {s: len(dm.splits[s]) for s in ("train", "val", "test")} == {"train": 160, "val": 20, "test": 20}


def test_a_csv_folder_with_a_text_column(tmp_path):
    for split in ("train", "validation", "test"):
        rows = "\n".join(f'{i},"{s}"' for i, s in enumerate(make_sentences(20, 0)))
        (tmp_path / f"{split}.csv").write_text("id,review\n" + rows + "\n")
    dm = prepared(source="hf", name=str(tmp_path), text_column="review")
    assert len(dm.splits["train"]) == 20
    with pytest.raises(UserError, match=r"has no column 'text' \(it has: id, review\): set data.text_column to one"):
        prepared(source="hf", name=str(tmp_path))


def test_bad_hf_settings_are_one_sentence(hf_folder, tmp_path, monkeypatch):
    with pytest.raises(UserError, match=r"has no split 'dev' \(it has: train, validation, test\): set data.splits.val"):
        prepared(source="hf", name=str(hf_folder), splits={"val": "dev"})
    with pytest.raises(UserError, match=r"^data.name is not set: give a dataset's name"):
        prepared(source="hf")
    with pytest.raises(UserError, match=r"data.splits has dev: its keys are train, val and test\.$"):
        prepared(source="hf", name=str(hf_folder), splits={"dev": "x"})
    with pytest.raises(UserError, match=r"data.size=3 is not a WikiText: use 2 or 103\.$"):
        prepared(source="wikitext", size=3)
    with pytest.raises(UserError, match=r"data.root=.* does not exist: point data.root at a folder holding wiki"):
        prepared(source="wikitext", root=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match=r"data.min_len=0 keeps empty lines, which only data.mode=stream reads"):
        prepared(source="wikitext", root=str(hf_folder), min_len=0)
    with pytest.raises(
        UserError, match=r"data.name=.*hf_folder.* \(data.config=nope\) cannot be loaded: BuilderConfig"
    ):
        prepared(source="hf", name=str(hf_folder), config="nope")


def test_a_hub_dataset_without_network_is_one_sentence_at_once(monkeypatch, caplog):
    import time

    from rnnlm.data import hf

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hf, "hub_reachable", lambda timeout=3.0: False)  # as on a machine without network
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        prepared(source="hf", name="nosuchuser/wikitext_copy", config="wikitext-2-v1")
    assert time.monotonic() - started < 20  # not the library's retries
    assert str(err.value).startswith(
        "data.name=nosuchuser/wikitext_copy (data.config=wikitext-2-v1) is not in the local datasets cache and the "
        "Hub cannot be reached: run `python -c \"import datasets; datasets.load_dataset('nosuchuser/wikitext_copy', "
        "'wikitext-2-v1')\"` where there is network"
    )
    assert any("read from the local datasets cache" in r.getMessage() for r in caplog.records)
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"  # monkeypatch restores it after the test
