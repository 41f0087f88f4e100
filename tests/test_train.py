"""The README's command, run for real on a tiny corpus: train, resume, reproduce, reload, fail clearly."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch

from rnnlm.module import LanguageModel
from tests.conftest import run_train, tiny_overrides

SUMMARY = re.compile(r"best val/ppl ([\d.]+) \| test/ppl ([\d.]+) \| checkpoint (\S+)")


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def epoch_values(run_dir: Path, key: str) -> list[float]:
    return [float(r[key]) for r in metrics_rows(run_dir) if r.get(key)]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "vanilla"])
def test_train_each_cell_end_to_end(cell, tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(*tiny_overrides(tiny_corpus, run_dir), f"model={cell}", cwd=tmp_path)
    last_line = proc.stdout.strip().splitlines()[-1]
    m = SUMMARY.fullmatch(last_line)
    assert m, last_line
    val_ppl, test_ppl, ckpt = float(m[1]), float(m[2]), Path(m[3])
    assert ckpt.is_file() and ckpt.parent == run_dir / "checkpoints"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    vocab = 16 + 4
    assert 1.0 < val_ppl < vocab and 1.0 < test_ppl < vocab  # learned something: better than uniform
    rows = metrics_rows(run_dir)
    for key in ("train/loss", "train/grad_norm", "train/ppl", "val/ppl", "val/loss", "test/ppl", "lr-Adam"):
        assert any(r.get(key) for r in rows), key
    assert len(epoch_values(run_dir, "val/ppl")) == 2
    assert "epoch 1 | train/ppl" in proc.stdout  # the per-epoch line


def test_resume_continues_from_the_last_checkpoint(tiny_corpus, tmp_path):
    first = tmp_path / "first"
    run_train(*tiny_overrides(tiny_corpus, first), "trainer.max_epochs=1", cwd=tmp_path)
    ckpt = first / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["epoch"] == 0 and state["optimizer_states"]

    resumed = tmp_path / "resumed"
    run_train(*tiny_overrides(tiny_corpus, resumed), "trainer.max_epochs=3", f"ckpt_path={ckpt}", cwd=tmp_path)
    epochs = sorted({int(r["epoch"]) for r in metrics_rows(resumed) if r.get("val/ppl")})
    assert epochs == [1, 2]  # epoch 0 was not trained again
    steps = [int(r["step"]) for r in metrics_rows(resumed) if r.get("val/ppl")]
    assert min(steps) > state["global_step"]


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_same_numbers(workers, tiny_corpus, tmp_path):
    runs = []
    for name in ("a", "b"):
        run_train(*tiny_overrides(tiny_corpus, tmp_path / name), "seed=7", f"data.num_workers={workers}", cwd=tmp_path)
        runs.append(json.loads((tmp_path / name / "results.json").read_text()))
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert runs[0]["metrics"][key] == runs[1]["metrics"][key]  # exactly: same machine, same config
    assert epoch_values(tmp_path / "a", "train/loss") == epoch_values(tmp_path / "b", "train/loss")


def test_checkpoint_alone_rebuilds_the_model(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    run_train(*tiny_overrides(tiny_corpus, run_dir), "trainer.max_epochs=1", "model=gru", cwd=tmp_path)
    model = LanguageModel.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    assert model.net.cell == "gru"
    ids = model.tokenizer.encode("the cat sat", add_special_tokens=False).ids
    logits, _ = model(torch.tensor([[model.ids["sos"], *ids]]))
    assert logits.shape == (1, 4, model.tokenizer.get_vocab_size())


def test_bf16_mixed_precision_trains(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(*tiny_overrides(tiny_corpus, run_dir), "trainer.precision=bf16-mixed", cwd=tmp_path)
    val_ppl = float(SUMMARY.fullmatch(proc.stdout.strip().splitlines()[-1]).group(1))
    assert 1.0 < val_ppl < 20


def test_tensorboard_logger(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    run_train(*tiny_overrides(tiny_corpus, run_dir), "logger=tensorboard", "trainer.max_epochs=1", cwd=tmp_path)
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_sgd_with_plateau_scheduler(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [*tiny_overrides(tiny_corpus, run_dir), "optim=sgd", "optim.lr=1.0", "scheduler=plateau"]
    run_train(*overrides, "trainer.max_epochs=3", cwd=tmp_path)
    lrs = [float(r["lr-SGD"]) for r in metrics_rows(run_dir) if r.get("lr-SGD")]
    assert lrs[0] == 1.0 and len(lrs) == 3
    assert len(epoch_values(run_dir, "val/ppl")) == 3
