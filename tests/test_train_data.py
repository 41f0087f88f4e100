"""train.py end to end on the other corpora and tokenizers, and the corpus cache across runs."""

import re

import pandas as pd
import pytest

from rnnlm.generation import GenerationConfig, Generator, load_model
from tests.conftest import make_sentences, tiny_overrides, train_here
from tests.test_sources import make_acl_imdb


def without_data(corpus):
    return [o for o in tiny_overrides(corpus) if not o.startswith(("data=", "data.train", "data.val", "data.test"))]


@pytest.mark.parametrize("tokenizer", ["tokenizer=char", "tokenizer=bpe tokenizer.vocab_size=60"])
def test_char_and_bpe_models_train_and_write_text(tokenizer, tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    train_here(*tiny_overrides(tiny_corpus), *tokenizer.split(), "data.max_tokens=200", run_dir=run_dir)
    model = load_model(run_dir / "checkpoints" / "last.ckpt", "cpu")
    gen = Generator(model.net, model.tokenizer)
    out = gen.generate(["the c"], 3, GenerationConfig(strategy="sample", seed=1, max_len=40))
    assert all(isinstance(g.text, str) and "▁" not in g.text for g in out)
    # the tokenizer's decoder puts the pieces together: no space between characters of a word
    if "char" in tokenizer:
        assert any(" " in g.text and "  " not in g.text for g in out)


def test_csv_table_trains_with_carved_splits(tiny_corpus, tmp_path, caplog):
    table = tmp_path / "reviews.csv"
    docs = [" ".join(s.capitalize() + "." for s in make_sentences(3, i)) for i in range(120)]
    pd.DataFrame({"review": docs, "label": 1}).to_csv(table, index=False)
    metrics = train_here(
        *without_data(tiny_corpus), "data=csv", f"data.path={table}", "data.text_column=review",
        "data.val_fraction=0.1", "data.test_fraction=0.1", "tokenizer.split_punct=true", run_dir=tmp_path / "run",
    )  # fmt: skip
    assert {"val/ppl", "test/ppl"} <= set(metrics)
    counts = {s: int(n.replace(",", "")) for s, n in re.findall(r"(train|val|test) +([\d,]+) sentences", caplog.text)}
    assert counts["val"] == counts["test"] > 12  # 12 rows each, split into sentences
    assert sum(counts.values()) > 2 * 120


def test_imdb_experiment_reproduces_the_setup_and_reuses_its_cache(tiny_corpus, tmp_path, caplog):
    root = make_acl_imdb(tmp_path / "imdb")
    run = [*without_data(tiny_corpus), "experiment=imdb", f"data.root={root}", "data.batch_size=16"]
    train_here(*run, "trainer.max_epochs=1", run_dir=tmp_path / "run")
    assert "corpus read, tokenized and encoded" in caplog.text
    assert "train       114 sentences (of 171: 57 dropped by data.min_len=5" in caplog.text  # "Wow!": 2 tokens
    assert "kind=word, vocab_size=20000" in caplog.text and "split_punct=True" in caplog.text
    caplog.clear()
    train_here(*run, "trainer.max_epochs=1", run_dir=tmp_path / "run2")
    assert "encoded corpus loaded from" in caplog.text
