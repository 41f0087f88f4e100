"""train.py end to end on the other corpora and tokenizers, and the corpus cache across runs."""

import re

import pandas as pd
import pytest

from rnnlm.generation import GenerationConfig, Generator, load_model
from tests.conftest import make_sentences, run_train, tiny_overrides
from tests.test_sources import make_acl_imdb


def without_data(corpus, run_dir):
    return [
        o for o in tiny_overrides(corpus, run_dir) if not o.startswith(("data=", "data.train", "data.val", "data.test"))
    ]


@pytest.mark.parametrize("tokenizer", ["tokenizer=char", "tokenizer=bpe tokenizer.vocab_size=60"])
def test_char_and_bpe_models_train_and_write_text(tokenizer, tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    run_train(*tiny_overrides(tiny_corpus, run_dir), *tokenizer.split(), "data.max_tokens=200", cwd=tmp_path)
    model = load_model(run_dir / "checkpoints" / "last.ckpt", "cpu")
    out = Generator(model).generate(["the c"], 3, GenerationConfig(strategy="sample", seed=1, max_len=40))
    assert all(isinstance(g.text, str) and "▁" not in g.text for g in out)
    # the tokenizer's decoder puts the pieces together: no space between characters of a word
    if "char" in tokenizer:
        assert any(" " in g.text and "  " not in g.text for g in out)


def test_csv_table_trains_with_carved_splits(tiny_corpus, tmp_path):
    table = tmp_path / "reviews.csv"
    docs = [" ".join(s.capitalize() + "." for s in make_sentences(3, i)) for i in range(120)]
    pd.DataFrame({"review": docs, "label": 1}).to_csv(table, index=False)
    run_dir = tmp_path / "run"
    proc = run_train(
        *without_data(tiny_corpus, run_dir), "data=csv", f"data.path={table}", "data.text_column=review",
        "data.val_fraction=0.1", "data.test_fraction=0.1", "tokenizer.split_punct=true", cwd=tmp_path,
    )  # fmt: skip
    assert "best val/ppl" in proc.stdout and "test/ppl" in proc.stdout
    counts = {s: int(n.replace(",", "")) for s, n in re.findall(r"- (train|val|test) +([\d,]+) sentences", proc.stdout)}
    assert counts["val"] == counts["test"] > 12  # 12 rows each, split into sentences
    assert sum(counts.values()) > 2 * 120


def test_imdb_experiment_reproduces_the_setup_and_reuses_its_cache(tiny_corpus, tmp_path):
    root = make_acl_imdb(tmp_path / "imdb")
    run = [*without_data(tiny_corpus, tmp_path / "run"), "experiment=imdb", f"data.root={root}"]
    run += ["data.batch_size=16", "trainer.max_epochs=1"]
    first = run_train(*run, cwd=tmp_path)
    assert "corpus read, tokenized and encoded" in first.stdout
    assert "train       114 sentences (of 171: 57 dropped by data.min_len=5" in first.stdout  # "Wow!": 2 tokens
    assert "kind=word, vocab_size=20000" in first.stdout and "split_punct=True" in first.stdout
    second = run_train(*run[:-1], "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'run2'}", cwd=tmp_path)
    assert "encoded corpus loaded from" in second.stdout
