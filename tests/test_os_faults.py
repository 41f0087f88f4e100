"""Operating-system faults: one sentence naming the path and the cause, and nothing lost or half-written.

A corpus cache that cannot be written is an optimisation lost (a warning, the run goes on from memory);
a checkpoint that cannot be written stops the run and keeps the last good one. The full disk is made
two ways: here by making the write fail with ENOSPC, and in the slow tier for real, on a tiny tmpfs
mounted in a private mount namespace (`unshare`), where the system allows it.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import sys

import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.files import WriteError, atomic_open, check_writable
from rnnlm.lifecycle.checkpoint_io import AtomicCheckpointIO
from tests.conftest import ROOT, tiny_overrides, train_here


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class FullDisk:
    """A file whose writes fail as on a full disk (what os.fdopen returns, once patched)."""

    def __init__(self, f) -> None:
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()

    write = staticmethod(no_space)

    def __getattr__(self, name):
        return getattr(self.f, name)


def cache_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "the corpus cache could not be written" in r.getMessage()]


def test_a_cache_dir_that_is_a_file_costs_a_warning_not_the_run(tiny_corpus, tmp_path, caplog):
    a_file = tmp_path / "cache"
    a_file.write_text("not a folder")
    metrics = train_here(*tiny_overrides(tiny_corpus), f"data.cache_dir={a_file}", run_dir=tmp_path / "run")
    (warning,) = cache_warnings(caplog)  # once
    assert warning.startswith(f"the corpus cache could not be written to {a_file}/text-")
    assert warning.endswith(": a file stands where a folder should be; this run goes on from memory (set "
                            "data.cache_dir to a writable folder, or to null to stop caching)")  # fmt: skip
    assert metrics["val/ppl"] == pytest.approx(15.93, rel=0.01)  # the tiny LSTM's usual result
    assert a_file.read_text() == "not a folder"


def test_a_full_disk_while_caching_the_corpus_costs_a_warning_and_leaves_no_entry(
    tiny_corpus, tmp_path, caplog, monkeypatch
):
    import rnnlm.data.cache as cache

    monkeypatch.setattr(cache.np, "save", no_space)
    cache_dir = tmp_path / "cache"
    train_here(*tiny_overrides(tiny_corpus), f"data.cache_dir={cache_dir}", "trainer.max_epochs=1",
               run_dir=tmp_path / "run")  # fmt: skip
    (warning,) = cache_warnings(caplog)
    assert ": no space is left on the device; this run goes on from memory" in warning
    assert list(cache_dir.iterdir()) == []  # neither an entry nor a half-written temporary folder


def test_a_checkpoint_that_cannot_be_written_stops_the_run_and_keeps_the_last_good_one(
    tiny_corpus, tmp_path, monkeypatch
):
    """The first epoch's checkpoints are written; at the second epoch the disk is full."""
    import rnnlm.files as files

    real_fdopen, saves = files.os.fdopen, []

    def fill_up_at_the_third_save(fd, mode="r", **kwargs):
        f = real_fdopen(fd, mode, **kwargs)
        if "b" in mode:
            saves.append(1)
            if len(saves) > 2:  # epoch 0 wrote its best and its last checkpoint
                return FullDisk(f)
        return f

    monkeypatch.setattr(files.os, "fdopen", fill_up_at_the_third_save)
    run_dir = tmp_path / "run"
    with pytest.raises(UserError) as err:
        train_here(*tiny_overrides(tiny_corpus), run_dir=run_dir)
    folder = run_dir / "checkpoints"
    best = folder / "epoch000-ppl18.43.ckpt"
    assert str(err.value) == (
        f"the checkpoint {folder / 'epoch001-ppl15.93.ckpt'} could not be written: no space is left on the "
        "device; free space there or set callbacks.model_checkpoint.dirpath to another disk, then resume from "
        f"{folder / 'last.ckpt'}, the last good checkpoint (kept intact)."
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted([best.name, "last.ckpt"])  # no temporary file
    assert torch.load(folder / "last.ckpt", weights_only=True)["epoch"] == 0  # complete and loadable


def test_write_errors_name_the_path_and_the_cause(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(WriteError, match=f"{a_file}/out.json could not be written: a file stands where a folder"):
        with atomic_open(a_file / "out.json") as f:
            f.write("{}")
    with pytest.raises(WriteError, match="a file stands where a folder should be"):
        check_writable(a_file / "deeper" / "out.json")
    check_writable(tmp_path / "new" / "deeper" / "out.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # the probe made and removed its folders


def test_a_failed_checkpoint_write_keeps_the_previous_file_byte_for_byte(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)
    before = path.read_bytes()
    import rnnlm.files as files

    real_fdopen = files.os.fdopen

    def full(fd, mode="r", **kwargs):
        return FullDisk(real_fdopen(fd, mode, **kwargs))

    monkeypatch.setattr(files.os, "fdopen", full)
    with pytest.raises(UserError, match="then resume from .*last.ckpt, the last good checkpoint"):
        io.save_checkpoint({"step": 2}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def can_mount_a_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /tmp"],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not can_mount_a_tmpfs(), reason="needs unshare and a mountable tmpfs (user namespaces)")
def test_a_real_full_disk_under_the_checkpoints(tiny_corpus, tmp_path):
    """train.py in its own mount namespace, its checkpoint folder a 64 KiB tmpfs: the first save fails."""
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    train = " ".join([sys.executable, str(ROOT / "train.py"), *tiny_overrides(tiny_corpus, tmp_path / "run"),
                      f"callbacks.model_checkpoint.dirpath={ckpts}"])  # fmt: skip
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {ckpts} && {train}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the checkpoint {ckpts}/epoch000-ppl18.43.ckpt could not be written: no space is")
    assert last.endswith("then resume from scratch: no checkpoint was kept.") and "Traceback" not in proc.stderr
