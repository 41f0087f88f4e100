"""Stream mode under `trainer=ddp_cpu` (two real gloo processes): each rank its own contiguous columns and
hidden state, perplexity equal to a one-process evaluation, every rank's state in a checkpoint, exact resume."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch

from rnnlm.data.stream import train_columns
from rnnlm.training.lightning_module import LanguageModel
from tests.conftest import run_train
from tests.test_stream import datamodule, results, stream_overrides


@pytest.fixture(scope="module")
def ddp_stream(tiny_corpus, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp_stream")
    run_dir, seen = tmp / "run", tmp / "seen"
    # No dropout: under DDP every rank resumes with rank 0's random state (docs/RELIABILITY.md), and the slow
    # resume test below compares with this run.
    run_train(*stream_overrides(tiny_corpus, "model.dropout=0"), f"hydra.run.dir={run_dir}", "trainer=ddp_cpu",
              "+callbacks.record._target_=tests.apps.record_windows.RecordWindows", f"+callbacks.record.out={seen}",
              "+callbacks.record.save_at_step=5", cwd=tmp, timeout=120)  # fmt: skip
    return run_dir, seen


def test_each_ddp_rank_trains_on_its_own_contiguous_columns(ddp_stream, tiny_corpus):
    run_dir, seen = ddp_stream
    dm = datamodule(tiny_corpus, run_dir / "checkpoints" / "last.ckpt")
    everything = train_columns(dm.stream("train"), batch_size=4, num_replicas=2, rank=0)
    for rank in (0, 1):
        windows = json.loads((seen / f"rank{rank}_epoch0.json").read_text())
        mine = np.concatenate([np.array(w) for w in windows], axis=1)
        expected = train_columns(dm.stream("train"), 4, 2, rank).inputs.numpy()
        assert (mine == expected).all() and mine.shape[0] == 4
    assert everything.inputs.shape[1] == mine.shape[1]


def test_ddp_stream_perplexity_equals_a_single_process_evaluation(ddp_stream, tiny_corpus):
    run_dir, seen = ddp_stream
    res = results(run_dir)
    module = LanguageModel.load_from_checkpoint(res["best_checkpoint"], map_location="cpu")
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    dm = datamodule(tiny_corpus, res["best_checkpoint"])
    assert trainer.test(module, datamodule=dm, verbose=False)[0]["test/ppl"] == pytest.approx(
        res["metrics"]["test/ppl"], rel=1e-5
    )
    h, c = torch.load(seen / "mid.ckpt", map_location="cpu", weights_only=True)["rnnlm_stream_hidden"]
    assert h.shape == (2, 2, 4, 16) and not torch.equal(h[0], h[1])  # each rank's own state, both saved


@pytest.mark.slow
def test_ddp_stream_resumes_mid_epoch_exactly(ddp_stream, tiny_corpus, tmp_path):
    run_dir, seen = ddp_stream
    resumed = tmp_path / "resumed"
    run_train(*stream_overrides(tiny_corpus, "model.dropout=0"), f"hydra.run.dir={resumed}", "trainer=ddp_cpu",
              f"ckpt_path={seen / 'mid.ckpt'}", cwd=tmp_path, timeout=120)  # fmt: skip
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert results(resumed)["metrics"][key] == pytest.approx(results(run_dir)["metrics"][key], rel=1e-6), key
