"""Runs that hang end in bounded time: a collective's timeout, SIGTERM or Ctrl-C when a batch cannot finish.

The processes are the subject here, so these run train.py for real. A rank stalls (tests/apps/stall.py)
while the other waits for it inside a collective, in C++, where no Python signal handler can run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, tiny_overrides

pytestmark = pytest.mark.slow  # real processes: the slow tier (CI runs it)


def start(overrides: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *overrides], cwd=cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,  # a terminal's group
    )  # fmt: skip


def wait_for(marker: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the stall never began"
        time.sleep(0.2)


def processes_of(run_dir: Path) -> list[str]:
    """Processes still running for this run (every rank's command line names the run folder)."""
    out = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout
    return out.split()


def stall(marker: Path, rank: int | None) -> list[str]:
    return ["+callbacks.stall._target_=tests.apps.stall.StallAt", "+callbacks.stall.step=3",
            f"+callbacks.stall.rank={'null' if rank is None else rank}",
            f"+callbacks.stall.marker={marker}"]  # fmt: skip


def test_a_collective_that_waits_too_long_ends_every_rank_with_one_sentence(tiny_corpus, tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "stalled"
    proc = start([*tiny_overrides(tiny_corpus, run_dir), "trainer=ddp_cpu", "trainer.strategy.timeout_s=3",
                  *stall(marker, rank=1)], tmp_path)  # fmt: skip
    wait_for(marker, proc)
    began = time.monotonic()
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - began < 30  # 3 s of timeout plus the way out, not forever
    assert proc.returncode == 2, err[-3000:]
    assert (
        "error: rank 0 of 2: a collective (gradient or metric sum across the DDP processes) timed out after 3 s: "
        "another process hung or stopped (its own output says why); no checkpoint had been saved yet; raise "
        "trainer.strategy.timeout_s only if the ranks are legitimately that slow." in err
    )
    assert "Traceback" not in err
    assert processes_of(run_dir) == []  # the stalled rank did not outlive the run


def test_sigterm_ends_a_run_stuck_in_a_collective_after_the_grace_period(tiny_corpus, tmp_path):
    """`kill -TERM` (or `timeout`) on the process the user started: rank 0 waits in C++ for the stalled
    rank, so only the watcher thread can act; it passes SIGTERM to rank 1 and exits after the grace period."""
    run_dir, marker = tmp_path / "run", tmp_path / "stalled"
    proc = start([*tiny_overrides(tiny_corpus, run_dir), "trainer=ddp_cpu", "interrupt_grace_s=2",
                  *stall(marker, rank=1)], tmp_path)  # fmt: skip
    wait_for(marker, proc)
    time.sleep(1)  # rank 0 is in the gradient all-reduce by now
    proc.send_signal(signal.SIGTERM)
    began = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert 2 <= time.monotonic() - began < 10
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "error: the run did not stop within 2 s of SIGTERM: exiting now without saving (it was waiting in " in err
    assert "no checkpoint had been saved yet." in err
    assert processes_of(run_dir) == []
    assert not list(run_dir.rglob("*.tmp"))


def test_a_second_ctrl_c_quits_a_stuck_run_at_once(tiny_corpus, tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "stalled"
    proc = start([*tiny_overrides(tiny_corpus, run_dir), "trainer.max_epochs=3", *stall(marker, rank=None)], tmp_path)
    wait_for(marker, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(1)
    assert proc.poll() is None  # the first waits for the batch (the grace period is 30 s)
    proc.send_signal(signal.SIGINT)
    began = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - began < 3
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "Ctrl-C: finishing this batch, then saving a checkpoint to resume from" in err
    assert "error: Ctrl-C again: exiting now without saving (it was waiting in on_train_batch_start (stall.py:" in err
    assert "the last good checkpoint is" not in err or "last.ckpt" in err
    assert not list(run_dir.rglob("*.tmp"))


def test_ctrl_c_in_a_terminal_with_data_workers_is_one_ctrl_c(tiny_corpus, tmp_path):
    """The terminal sends Ctrl-C to every process of the run, data-loader workers too: that must stay one
    Ctrl-C (a checkpoint, then the stop), not read as a second one that quits at once."""
    run_dir = tmp_path / "run"
    stop = ["+callbacks.stop._target_=tests.apps.interrupt.SignalAt", "+callbacks.stop.step=5",
            "+callbacks.stop.signum=2", "+callbacks.stop.group=true"]  # fmt: skip
    proc = start([*tiny_overrides(tiny_corpus, run_dir), "data.num_workers=2", *stop], tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "stopped by SIGINT at epoch 0, step 5" in err and "error: Ctrl-C again" not in err
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
