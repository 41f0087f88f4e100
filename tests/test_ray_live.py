"""Sweeps on a live Ray cluster that the tests start here (`ray start --head`), as real processes (slow tier).

Skipped, with the reason, where the `ray` extra is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY_EVAL, eval_here, run_train, tiny_overrides

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason='needs the ray extra: pip install -e ".[ray]"'),
]
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.fixture(scope="module")
def cluster() -> str:
    """A one-node Ray cluster with 2 CPUs, as `ray start --head` makes one; its address. Token authentication
    on, as Ray 2.59+ starts local clusters, and the sweeps' drivers told so (RAY_AUTH_MODE, docs/CLUSTERS.md)."""
    mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "token"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = [RAY, "start", "--head", f"--port={port}", "--num-cpus=2", "--num-gpus=0", "--node-ip-address=127.0.0.1",
             "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True, timeout=180)
    yield f"127.0.0.1:{port}"
    subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=180)
    os.environ.pop("RAY_AUTH_MODE") if mode is None else os.environ.update(RAY_AUTH_MODE=mode)


def sweep_args(tiny_corpus, tmp_path, address: str, *overrides: str) -> list[str]:
    run = [o for o in tiny_overrides(tiny_corpus) if not o.startswith("hydra.run.dir")]
    ray = ["hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}", "hydra.launcher.ray.remote.num_gpus=0",
           "hydra.launcher.ray.remote.num_cpus=1", "trainer=cpu"]  # fmt: skip
    return ["-m", *run, *ray, *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"]


def results(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/results.json")}


def ray_workers() -> set[int]:
    return {int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline") if _cmdline(p).startswith("ray::")}


def _cmdline(path: Path) -> str:
    try:
        return path.read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_ray_started_by_the_sweep_runs_it_and_is_stopped_after(tiny_corpus, tmp_path):
    before = ray_workers()  # first in this file: before the module's cluster starts
    args = sweep_args(tiny_corpus, tmp_path, "null", "model.hidden_size=8,16", "trainer.max_epochs=1")
    run_train(*args, cwd=tmp_path)
    assert sorted(results(tmp_path / "sweep")) == ["0", "1"]
    time.sleep(2)
    assert ray_workers() <= before  # no worker of the sweep's own Ray outlives it


def test_three_cells_run_as_ray_tasks_on_a_running_cluster(cluster, tiny_corpus, tmp_path):
    run_train(*sweep_args(tiny_corpus, tmp_path, cluster, "model=rnn,gru,lstm", "trainer.max_epochs=2"), cwd=tmp_path)
    got = results(tmp_path / "sweep")
    assert sorted(got) == ["0", "1", "2"]
    assert [got[k]["cell"] for k in ("0", "1", "2")] == ["rnn", "gru", "lstm"]
    assert all(got[k]["epochs"] == 2 for k in got)
    for k in got:  # each task's test stage: its best checkpoint, evaluated again here, gives the same number
        again = eval_here(got[k]["best_checkpoint"], tiny_corpus, tmp_path / f"eval{k}", *TINY_EVAL)["test/ppl"]
        assert got[k]["metrics"]["test/ppl"] == pytest.approx(again, rel=1e-5), k
    report = subprocess.run([sys.executable, "-m", "rnnlm.report", str(tmp_path / "sweep")], cwd=ROOT,
                            capture_output=True, text=True, check=True)  # fmt: skip
    assert all(f"model={cell}" in report.stdout for cell in ("rnn", "gru", "lstm"))
    status = subprocess.run([RAY, "status", f"--address={cluster}"], capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr  # a cluster the sweep joined is left running


def test_a_failing_point_fails_once_is_reported_and_the_other_finishes(cluster, tiny_corpus, tmp_path):
    args = sweep_args(tiny_corpus, tmp_path, cluster, "model.dropout=0.1,1.5", "trainer.max_epochs=1")
    proc = run_train(*args, cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error: job #")]
    assert len(lines) == 1 and lines[0].startswith("error: job #1 (model.dropout=1.5; Ray task ")
    assert lines[0].endswith(") failed: model.dropout=1.5 must be a number in [0.0, 1.0).")
    assert "error: 1 of 2 sweep jobs failed (above); the others finished" in proc.stderr
    assert sorted(results(tmp_path / "sweep")) == ["0"]
    # A setting that is wrong stays wrong: the point ran once (one error in its log), not again by Ray.
    assert (tmp_path / "sweep" / "1" / "train.log").read_text().count("must be a number in [0.0, 1.0)") == 1


def worker_of(log: Path) -> int | None:
    """The process that holds a job's train.log open: the Ray worker running that job."""
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(log) for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:  # a process that ended, or one not ours
            continue
    return None


def kill_job_after_its_first_epoch(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """The sweep as a process; job #0's worker killed (SIGKILL, as an out-of-memory kill) once its first
    epoch's checkpoint is written, while it trains the next."""
    job = tmp_path / "sweep" / "0"
    with open(tmp_path / "out.txt", "w+") as out, open(tmp_path / "err.txt", "w+") as err:
        sweep = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args], cwd=tmp_path, stdout=out, stderr=err)
        deadline, killed = time.monotonic() + 300, None
        while killed is None and sweep.poll() is None and time.monotonic() < deadline:
            if (job / "checkpoints" / "last.ckpt").exists() and not (job / "results.json").exists():
                pid = worker_of((job / "train.log").resolve())
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
            time.sleep(0.02)
        assert killed is not None, "job #0 was not caught between its first checkpoint and its end"
        sweep.wait(timeout=600)
        out.seek(0), err.seek(0)
        return subprocess.CompletedProcess(args, sweep.returncode, out.read(), err.read())


def test_a_killed_job_runs_again_and_resumes_to_the_uninterrupted_numbers(cluster, tiny_corpus, tmp_path):
    # Two points of one setting: #0 is killed after its first epoch, #1 runs through, as a twin.
    args = sweep_args(tiny_corpus, tmp_path, cluster, "seed=3,3", "trainer.max_epochs=6")
    proc = kill_job_after_its_first_epoch(args, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = results(tmp_path / "sweep")
    assert "resuming from" in (tmp_path / "sweep" / "0" / "train.log").read_text()
    assert got["0"]["epochs"] == got["1"]["epochs"] == 6
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert got["0"]["metrics"][key] == pytest.approx(got["1"]["metrics"][key], rel=1e-6), key


def test_a_killed_job_without_retries_is_reported_and_the_sweep_ends(cluster, tiny_corpus, tmp_path):
    args = sweep_args(tiny_corpus, tmp_path, cluster, "seed=3,4", "trainer.max_epochs=6",
                      "hydra.launcher.ray.remote.max_retries=0")  # fmt: skip
    proc = kill_job_after_its_first_epoch(args, tmp_path)
    assert proc.returncode == 1
    assert "error: job #0 (seed=3; Ray task " in proc.stderr
    assert ") failed: its worker process died (WorkerCrashedError, no retries (remote.max_retries=0)): " in proc.stderr
    assert sorted(results(tmp_path / "sweep")) == ["1"]


def test_an_address_with_no_cluster_is_one_sentence(tiny_corpus, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_train(*sweep_args(tiny_corpus, tmp_path, f"127.0.0.1:{port}", "seed=1,2"), cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert f"error: hydra.launcher.ray.init.address=127.0.0.1:{port} reached no Ray cluster (" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "sweep" / "0").exists()


def test_a_job_no_node_can_take_is_one_sentence_not_a_wait(cluster, tiny_corpus, tmp_path):
    args = [*sweep_args(tiny_corpus, tmp_path, cluster, "seed=1,2"), "hydra.launcher.ray.remote.num_gpus=1"]
    proc = run_train(*args, cwd=tmp_path, check=False, timeout=300)  # Ray itself would keep it pending for ever
    assert proc.returncode == 1
    assert (
        "error: hydra.launcher.ray.remote.num_gpus=1 is more than any node of the Ray cluster has (at most 0 GPU)"
        in (proc.stderr)
    )
    assert not (tmp_path / "sweep" / "0").exists()
