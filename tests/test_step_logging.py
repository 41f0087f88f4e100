"""Per-step values are logged only where a logger writes them (and for the bar): the CSV still holds the
value of every log_every_n_steps-th step, the value of that very step."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import pytest

from tests.conftest import tiny_overrides, train_here


class StepLosses(L.Callback):
    """Writes every step's loss to `out` (JSON: step -> loss)."""

    def __init__(self, out: str) -> None:
        self.out, self.losses = Path(out), {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses[trainer.global_step - 1] = float(outputs["loss"])
        self.out.write_text(json.dumps(self.losses))


def test_the_csv_holds_the_loss_of_every_nth_step(tiny_corpus, tmp_path):
    train_here(*tiny_overrides(tiny_corpus), "trainer.log_every_n_steps=5",
               "+callbacks.steps._target_=tests.test_step_logging.StepLosses",
               f"+callbacks.steps.out={tmp_path / 'losses.json'}", run_dir=tmp_path)  # fmt: skip
    losses = {int(k): v for k, v in json.loads((tmp_path / "losses.json").read_text()).items()}
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/grad_norm")]
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(4, 38, 5))  # 19 steps an epoch, 2 epochs
    for r in rows:
        assert float(r["train/loss"]) == pytest.approx(losses[int(r["step"])], rel=1e-6)
