"""Interrupted mid-epoch (SIGTERM, Ctrl-C) and resumed: the same numbers as a run never interrupted.

The signals are real (sent to this process at a given step); the runs happen in this process. The same
through real processes, and for DDP ranks: tests/test_signals.py (slow tier).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
from pathlib import Path

import lightning as L
import pytest
import torch

from rnnlm.lifecycle.interrupt import TrainingInterrupted
from tests.conftest import tiny_overrides, train_here

EPOCHS = "trainer.max_epochs=3"


class SignalAt(L.Callback):
    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def signal_at(step: int, signum: int) -> list[str]:
    return ["+callbacks.stop._target_=tests.test_resume.SignalAt", f"+callbacks.stop.step={step}",
            f"+callbacks.stop.signum={signum}"]  # fmt: skip


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tiny_corpus, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    train_here(*tiny_overrides(tiny_corpus), EPOCHS, run_dir=run_dir)
    return results(run_dir)


def interrupt(tiny_corpus, run_dir: Path, signum: int, step: int) -> TrainingInterrupted:
    with pytest.raises(TrainingInterrupted) as stop:
        train_here(*tiny_overrides(tiny_corpus), EPOCHS, *signal_at(step, signum), run_dir=run_dir)
    assert stop.value.code == 128 + signum
    assert not (run_dir / "results.json").exists()
    return stop.value


def assert_same(resumed: dict, uninterrupted: dict) -> None:
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert resumed["metrics"][key] == pytest.approx(uninterrupted["metrics"][key], rel=1e-6), key
    assert [h["val/ppl"] for h in resumed["history"]] == pytest.approx(
        [h["val/ppl"] for h in uninterrupted["history"]], rel=1e-6
    )


def test_sigterm_saves_a_checkpoint_and_the_printed_command_resumes_exactly(
    tiny_corpus, tmp_path, uninterrupted, capsys
):
    stop = interrupt(tiny_corpus, tmp_path / "interrupted", signal.SIGTERM, step=20)
    err = capsys.readouterr().err
    assert "stopped by SIGTERM at epoch 1, step 20" in err and stop.epoch == 1 and stop.step == 20
    ckpt = torch.load(stop.checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 20 and ckpt["epoch"] == 1  # mid-epoch: 19 batches an epoch
    argv = shlex.split(err.split("resume with:\n", 1)[1].strip().splitlines()[0])
    assert argv[0] == "python" and argv[-1] == f"ckpt_path={stop.checkpoint.resolve()}"
    train_here(*argv[2:], run_dir=tmp_path / "resumed")  # the command as printed, in a new run folder
    assert_same(results(tmp_path / "resumed"), uninterrupted)


def test_ctrl_c_then_ckpt_path_last_resumes_exactly(tiny_corpus, tmp_path, uninterrupted, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # runs go to ./outputs, where ckpt_path=last looks
    run_dir = tmp_path / "outputs" / "train" / "runs" / "interrupted"
    interrupt(tiny_corpus, run_dir, signal.SIGINT, step=7)
    train_here(*tiny_overrides(tiny_corpus), EPOCHS, "ckpt_path=last", run_dir=tmp_path / "resumed")
    assert f"resuming from {run_dir}/checkpoints/last.ckpt" in caplog.text
    assert_same(results(tmp_path / "resumed"), uninterrupted)


class SignalInLastValidation(L.Callback):
    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking and trainer.current_epoch == trainer.max_epochs - 1 and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)


def test_a_signal_in_the_last_validation_stops_before_the_test_stage(tiny_corpus, tmp_path, capsys):
    """Validation finishes and fit ends by itself; every rank agrees to stop there, and the test stage
    (whose collectives one stopped rank would leave the others waiting in) does not start."""
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as stop:
        train_here(*tiny_overrides(tiny_corpus), EPOCHS, "+callbacks.stop._target_=tests.test_resume."
                   "SignalInLastValidation", run_dir=run_dir)  # fmt: skip
    assert stop.value.step == 57 and "stopped by SIGTERM at epoch 2, step 57" in capsys.readouterr().err
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 57
    assert "test/ppl" not in (run_dir / "csv" / "metrics.csv").read_text()


def test_ckpt_path_last_without_any_run_says_so(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match="ckpt_path=last found no checkpoints/last.ckpt under outputs/train"):
        train_here(*tiny_overrides(tiny_corpus), "ckpt_path=last", run_dir=tmp_path / "run")


def test_the_resume_command_keeps_the_overrides_but_the_run_folder_and_checkpoint(tmp_path):
    from rnnlm.lifecycle.interrupt import resume_command

    command = resume_command(["model=gru", "hydra.run.dir=x", "ckpt_path=old"], tmp_path / "last.ckpt")
    assert shlex.split(command)[2:] == ["model=gru", f"ckpt_path={tmp_path / 'last.ckpt'}"]


def test_slurm_preemption_saves_the_step_then_requeues_and_the_requeued_job_resumes_exactly(
    tiny_corpus, tmp_path, uninterrupted, capsys
):
    """submitit (hydra/launcher=slurm) installs a USR2 handler that requeues the job and exits at once; the
    guard lets it act only after the checkpoint, and the requeued job (same command, same folder) resumes."""
    run_dir, calls = tmp_path / "job", []

    def submitit_requeue(signum, frame):  # what submitit's handler does: requeue, then sys.exit(-1)
        last = run_dir / "checkpoints" / "last.ckpt"
        calls.append((signum, torch.load(last, weights_only=True)["global_step"] if last.is_file() else None))
        raise SystemExit(-1)

    previous = signal.signal(signal.SIGUSR2, submitit_requeue)
    try:
        with pytest.raises(SystemExit) as stop:
            train_here(*tiny_overrides(tiny_corpus), EPOCHS, *signal_at(20, signal.SIGUSR2), run_dir=run_dir)
        assert stop.value.code == -1 and calls == [(signal.SIGUSR2, 20)]  # saved mid-epoch, then requeued
        said = capsys.readouterr().err
        assert f"step 20; saved {run_dir / 'checkpoints' / 'last.ckpt'}\nSLURM requeues this job; it resumes" in said
        assert signal.getsignal(signal.SIGUSR2) is submitit_requeue  # given back after the run
        train_here(*tiny_overrides(tiny_corpus), EPOCHS, run_dir=run_dir)  # the requeued job
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert_same(results(run_dir), uninterrupted)


def test_without_a_requeue_handler_the_preemption_signal_is_left_alone():
    from rnnlm.lifecycle.stop_guard import StopGuard

    with StopGuard() as guard:
        assert guard.requeue is None and signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
