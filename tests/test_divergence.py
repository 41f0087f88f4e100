"""A nan/inf gradient stops the run naming the step and the kept checkpoint, or is skipped on request."""

from __future__ import annotations

import csv
import json
import math

import torch

from tests.conftest import run_train, tiny_overrides

POISON = ["+callbacks.poison._target_=tests.apps.poison.NanAt", "+callbacks.poison.step=20"]  # epoch 1, batch 1


def test_a_nan_stops_the_run_and_names_the_kept_checkpoint(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(*tiny_overrides(tiny_corpus, run_dir), "trainer.max_epochs=3", *POISON, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    message = proc.stderr.strip().splitlines()[-1]
    assert message == (
        f"error: training diverged: the gradient norm is nan at step 20 (epoch 1, batch 1); the last good checkpoint "
        f"is {last}: resume from it with a lower optim.lr or trainer.gradient_clip_val, or set "
        "trainer.skip_nonfinite=true to skip such steps."
    )
    assert "Traceback" not in proc.stderr
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["epoch"] == 0  # the end of the last good epoch, untouched by the bad step
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values() if t.is_floating_point())


def test_skip_nonfinite_skips_the_step_counts_it_and_trains_on(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(
        *tiny_overrides(tiny_corpus, run_dir), "trainer.max_epochs=2", "trainer.skip_nonfinite=true", *POISON,
        cwd=tmp_path,
    )  # fmt: skip
    assert "gradient norm nan at step 20 (epoch 1, batch 1): step skipped (1 so far)" in proc.stdout
    results = json.loads((run_dir / "results.json").read_text())
    assert all(math.isfinite(results["metrics"][k]) for k in ("val/ppl", "test/ppl", "train/ppl"))
    with open(run_dir / "csv" / "metrics.csv") as f:
        skipped = [float(r["train/skipped_steps"]) for r in csv.DictReader(f) if r.get("train/skipped_steps")]
    assert skipped and max(skipped) == 1.0
