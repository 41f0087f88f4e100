"""Interrupted mid-epoch (SIGTERM, Ctrl-C) and resumed: the same numbers as a run never interrupted."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, run_train, tiny_overrides

EPOCHS = "trainer.max_epochs=3"


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tiny_corpus, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    run_train(*tiny_overrides(tiny_corpus, run_dir), EPOCHS, cwd=run_dir.parent)
    return results(run_dir)


def interrupt(tiny_corpus, tmp_path, signum: int, step: int = 20, run_dir: Path | None = None):
    run_dir = run_dir or tmp_path / "interrupted"
    stop = ["+callbacks.stop._target_=tests.apps.interrupt.SignalAt", f"+callbacks.stop.step={step}",
            f"+callbacks.stop.signum={signum}"]  # fmt: skip
    proc = run_train(*tiny_overrides(tiny_corpus, run_dir), EPOCHS, *stop, cwd=tmp_path, check=False)
    assert proc.returncode == 128 + signum, proc.stderr[-3000:]
    assert not (run_dir / "results.json").exists()
    return run_dir, proc


def assert_same(resumed: dict, uninterrupted: dict) -> None:
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert resumed["metrics"][key] == pytest.approx(uninterrupted["metrics"][key], rel=1e-6), key
    assert [h["val/ppl"] for h in resumed["history"]] == pytest.approx(
        [h["val/ppl"] for h in uninterrupted["history"]], rel=1e-6
    )


def test_sigterm_saves_a_checkpoint_and_the_printed_command_resumes_exactly(tiny_corpus, tmp_path, uninterrupted):
    run_dir, proc = interrupt(tiny_corpus, tmp_path, signum=15)
    assert "stopped by SIGTERM at epoch 1, step 20" in proc.stderr
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 20 and ckpt["epoch"] == 1  # mid-epoch: 19 batches an epoch
    command = proc.stderr.split("resume with:\n", 1)[1].strip().splitlines()[0]
    argv = shlex.split(command)
    assert argv[:2] == ["python", str(ROOT / "train.py")] and argv[-1].startswith("ckpt_path=/")
    run_train(*argv[2:], cwd=tmp_path)  # the command as printed (in a new run folder)
    (resumed,) = (tmp_path / "outputs" / "train" / "runs").glob("*/results.json")
    assert_same(json.loads(resumed.read_text()), uninterrupted)


def test_ctrl_c_then_ckpt_path_last_resumes_exactly(tiny_corpus, tmp_path, uninterrupted):
    # where runs go by default, so that ckpt_path=last (the newest last.ckpt under outputs/train) finds it
    run_dir = tmp_path / "outputs" / "train" / "runs" / "interrupted"
    run_dir, proc = interrupt(tiny_corpus, tmp_path, signum=2, step=7, run_dir=run_dir)
    assert "Ctrl-C: finishing this batch" in proc.stderr
    resumed_dir = tmp_path / "resumed"
    proc = run_train(*tiny_overrides(tiny_corpus, resumed_dir), EPOCHS, "ckpt_path=last", cwd=tmp_path)
    assert f"resuming from {tmp_path}/outputs/train/runs/interrupted/checkpoints/last.ckpt" in proc.stdout
    assert_same(results(resumed_dir), uninterrupted)


def test_ckpt_path_last_without_any_run_says_so(tiny_corpus, tmp_path):
    proc = run_train(*tiny_overrides(tiny_corpus, tmp_path / "run"), "ckpt_path=last", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "ckpt_path=last found no checkpoints/last.ckpt under outputs/train" in proc.stderr
