"""train.py's run on a tiny corpus, in this process: every cell, resume, reproduce, reload, precisions,
loggers, schedulers. (As real processes: tests/test_readme.py and the slow tier.)"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
import torch

from rnnlm.precision import cpu_has_bf16
from rnnlm.training.lightning_module import LanguageModel
from tests.conftest import tiny_overrides, train_here

# The tiny run's best validation and test perplexity per cell, measured on our CPU (seed 1234, 2 epochs).
# A different CPU may round differently in the last digits, hence 1%, which a real change exceeds.
MEASURED = {"lstm": (15.93, 15.34), "gru": (15.70, 15.10), "rnn": (12.18, 11.59), "vanilla": (12.18, 11.59)}


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def epoch_values(run_dir: Path, key: str) -> list[float]:
    return [float(r[key]) for r in metrics_rows(run_dir) if r.get(key)]


def epoch_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rnnlm" and r.getMessage().startswith("epoch ")]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "vanilla"])
def test_train_each_cell_end_to_end(cell, tiny_corpus, tmp_path, capsys, caplog):
    run_dir = tmp_path / "run"
    metrics = train_here(*tiny_overrides(tiny_corpus), f"model={cell}", run_dir=run_dir)
    val, test = MEASURED[cell]
    assert metrics["val/ppl"] == pytest.approx(val, rel=0.01) and metrics["test/ppl"] == pytest.approx(test, rel=0.01)
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    best = run_dir / "checkpoints" / f"epoch001-ppl{metrics['val/ppl']:.2f}.ckpt"
    assert summary == f"best val/ppl {metrics['val/ppl']:.2f} | test/ppl {metrics['test/ppl']:.2f} | checkpoint {best}"
    assert best.is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    rows = metrics_rows(run_dir)
    for key in ("train/loss", "train/grad_norm", "train/ppl", "val/ppl", "val/loss", "test/ppl", "lr-Adam"):
        assert any(r.get(key) for r in rows), key
    assert epoch_values(run_dir, "val/ppl")[-1] == pytest.approx(metrics["val/ppl"], rel=1e-6)
    results = json.loads((run_dir / "results.json").read_text())
    assert [h["epoch"] for h in results["history"]] == [0, 1]
    assert [line.split(" | ")[:3] for line in epoch_lines(caplog)] == [
        [f"epoch {h['epoch']}", f"train/ppl {h['train/ppl']:.2f}", f"val/ppl {h['val/ppl']:.2f}"]
        for h in results["history"]
    ]


def test_model_summary_counts_parameters_per_part(tiny_corpus, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    train_here(*tiny_overrides(tiny_corpus), "trainer.max_epochs=1", "model.tie_weights=true", run_dir=tmp_path / "r")
    lines = [r.getMessage() for r in caplog.records if r.name == "rnnlm"]
    start = lines.index("model: lstm, 4,692 parameters (0.0 MB in fp32)")
    parts = [line.split() for line in lines[start + 1 : start + 4]]
    # embedding 20 x 16; LSTM 2 layers of 4 x (16 x 16 + 16 x 16 + 2 x 16); the tied decoder adds its bias only
    assert [(p[0], p[-1]) for p in parts] == [("embedding", "320"), ("rnn", "4,352"), ("decoder", "20")]


def test_resume_continues_from_the_last_checkpoint(tiny_corpus, tmp_path):
    first = tmp_path / "first"
    train_here(*tiny_overrides(tiny_corpus), "trainer.max_epochs=1", run_dir=first)
    ckpt = first / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["epoch"] == 0 and state["optimizer_states"]

    resumed = tmp_path / "resumed"
    train_here(*tiny_overrides(tiny_corpus), "trainer.max_epochs=3", f"ckpt_path={ckpt}", run_dir=resumed)
    epochs = sorted({int(r["epoch"]) for r in metrics_rows(resumed) if r.get("val/ppl")})
    assert epochs == [1, 2]  # epoch 0 was not trained again
    steps = [int(r["step"]) for r in metrics_rows(resumed) if r.get("val/ppl")]
    assert min(steps) > state["global_step"]
    # The history carries on from the checkpoint: epoch 0 from the first run, 1 and 2 from this one.
    history = json.loads((resumed / "results.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]


@pytest.mark.parametrize("workers", [0, 2])
def test_same_seed_same_numbers(workers, tiny_corpus, tmp_path):
    runs = []
    for name in ("a", "b"):
        overrides = [*tiny_overrides(tiny_corpus), "seed=7", f"data.num_workers={workers}", "trainer.max_epochs=1"]
        train_here(*overrides, run_dir=tmp_path / name)
        runs.append(json.loads((tmp_path / name / "results.json").read_text()))
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert runs[0]["metrics"][key] == runs[1]["metrics"][key]  # exactly: same machine, same config
    assert epoch_values(tmp_path / "a", "train/loss") == epoch_values(tmp_path / "b", "train/loss")


def test_checkpoint_alone_rebuilds_the_model(trained):
    model = LanguageModel.load_from_checkpoint(trained / "checkpoints" / "last.ckpt", map_location="cpu")
    assert model.net.cell == "lstm"
    ids = model.tokenizer.encode("the cat sat", add_special_tokens=False).ids
    logits, _ = model(torch.tensor([[model.ids["sos"], *ids]]))
    assert logits.shape == (1, 4, model.tokenizer.get_vocab_size())


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions (the fallback: test_precision.py)")
def test_bf16_mixed_precision_trains_to_the_fp32_perplexity(tiny_corpus, tmp_path):
    metrics = train_here(*tiny_overrides(tiny_corpus), "trainer.precision=bf16-mixed", run_dir=tmp_path / "run")
    assert metrics["val/ppl"] == pytest.approx(MEASURED["lstm"][0], rel=0.03)  # bf16 rounding, not a new model


def test_tensorboard_logger(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    train_here(*tiny_overrides(tiny_corpus), "logger=tensorboard", "trainer.max_epochs=1", run_dir=run_dir)
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_no_logger_trains_with_the_default_callbacks(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"  # the learning-rate monitor has nowhere to write: left out, not an error
    metrics = train_here(*tiny_overrides(tiny_corpus), "logger=[]", "trainer.max_epochs=2", run_dir=run_dir)
    assert metrics["val/ppl"] == pytest.approx(MEASURED["lstm"][0], rel=0.01)
    assert json.loads((run_dir / "results.json").read_text())["epochs"] == 2 and not (run_dir / "csv").exists()


def test_sgd_with_plateau_scheduler(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [*tiny_overrides(tiny_corpus), "optim=sgd", "optim.lr=1.0", "scheduler=plateau"]
    train_here(*overrides, "trainer.max_epochs=3", run_dir=run_dir)
    lrs = [float(r["lr-SGD"]) for r in metrics_rows(run_dir) if r.get("lr-SGD")]
    assert lrs == [1.0, 1.0, 1.0]  # val/ppl improves every epoch here: the plateau never cuts it
    assert len(epoch_values(run_dir, "val/ppl")) == 3
