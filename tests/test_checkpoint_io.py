"""Checkpoint files: written atomically, found by `ckpt_path=last` or after a SLURM requeue."""

from __future__ import annotations

import os
import time

import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.lifecycle.checkpoint_io import AtomicCheckpointIO, resolve_ckpt_path


def test_a_failed_write_keeps_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_ckpt_path_last_is_the_newest_last_ckpt(tmp_path):
    for run in ("runs/a", "multiruns/x/0", "runs/b"):
        (tmp_path / run / "checkpoints").mkdir(parents=True)
        (tmp_path / run / "checkpoints" / "last.ckpt").write_bytes(b"x")
        time.sleep(0.01)
    assert resolve_ckpt_path("last", tmp_path) == str(tmp_path / "runs/b/checkpoints/last.ckpt")
    assert resolve_ckpt_path("some/path.ckpt", tmp_path) == "some/path.ckpt"
    with pytest.raises(UserError, match="ckpt_path=last found no checkpoints/last.ckpt under"):
        resolve_ckpt_path("last", tmp_path / "nothing")


def test_a_requeued_slurm_job_resumes_from_the_newest_checkpoint_in_its_folder(tmp_path):
    assert resolve_ckpt_path(None, tmp_path, tmp_path) is None  # a fresh run folder: a fresh run
    for n in (1, 2):
        (tmp_path / f"hpc_ckpt_{n}.ckpt").write_bytes(b"x")  # Lightning's save on SIGUSR1
        time.sleep(0.01)
    assert resolve_ckpt_path(None, tmp_path, tmp_path) == str(tmp_path / "hpc_ckpt_2.ckpt")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")  # rnnlm's save on the SIGTERM that followed
    assert resolve_ckpt_path(None, tmp_path, tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
