"""A nan/inf gradient stops the run naming the step and the kept checkpoint, or is skipped on request."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from rnnlm.errors import UserError
from tests.conftest import tiny_overrides, train_here

POISON = ["+callbacks.poison._target_=tests.apps.poison.NanAt", "+callbacks.poison.step=20"]  # epoch 1, batch 1


def test_a_nan_stops_the_run_and_names_the_kept_checkpoint(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(UserError) as err:
        train_here(*tiny_overrides(tiny_corpus), "trainer.max_epochs=3", *POISON, run_dir=run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    assert str(err.value) == (
        "training diverged: the gradient norm is nan at step 20 (epoch 1, batch 1): lower optim.lr or "
        "trainer.gradient_clip_val, or set module.skip_nonfinite=true to skip such steps; the last good checkpoint "
        f"is {last} (resume from it with ckpt_path={last})."
    )
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["epoch"] == 0  # the end of the last good epoch, untouched by the bad step
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values() if t.is_floating_point())


def test_skip_nonfinite_skips_the_step_counts_it_and_trains_on(tiny_corpus, tmp_path, caplog):
    run_dir = tmp_path / "run"
    metrics = train_here(*tiny_overrides(tiny_corpus), "module.skip_nonfinite=true", *POISON, run_dir=run_dir)
    assert "gradient norm nan at step 20 (epoch 1, batch 1): step skipped (1 so far)" in caplog.text
    assert all(math.isfinite(metrics[k]) for k in ("val/ppl", "test/ppl", "train/ppl"))
    with open(run_dir / "csv" / "metrics.csv") as f:
        skipped = [float(r["train/skipped_steps"]) for r in csv.DictReader(f) if r.get("train/skipped_steps")]
    assert skipped and set(skipped) == {1.0}  # one step skipped, counted once
