"""Sweeps on a live SLURM (`sudo bash scripts/local_slurm.sh start` makes one here): python -m pytest -m slurm.

Skipped, with the reason, where `sbatch` is not on PATH, so neither tier needs a scheduler.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY_EVAL, eval_here, run_train, tiny_overrides

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(shutil.which("sbatch") is None, reason="needs SLURM: sudo bash scripts/local_slurm.sh start"),
]

# docs/CLUSTERS.md's command for scripts/local_slurm.sh's SLURM, as printed there (its time limit, CPUs and
# memory left to the launcher: the partition's MaxTime and what its node has)
DOCS = next(line.split() for line in (ROOT / "docs" / "CLUSTERS.md").read_text().splitlines()
            if line.startswith("python train.py -m hydra/launcher=slurm hydra.launcher.partition=debug "))  # fmt: skip
SLURM = ("hydra/launcher=slurm", "hydra.launcher.partition=debug", "trainer=cpu")


def sweep(tiny_corpus, tmp_path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    run = [o for o in tiny_overrides(tiny_corpus) if not o.startswith("hydra.run.dir")]
    return run_train("-m", *run, *SLURM, *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
                     check=check, timeout=600)  # fmt: skip


def job_ids(sweep_dir) -> list[str]:
    """The SLURM job ids submitit has started in a sweep (one folder each, holding the job's pickle)."""
    folder = sweep_dir / ".submitit"
    return sorted(p.parent.name for p in folder.glob("*/*_submitted.pkl")) if folder.is_dir() else []


def node(field: str) -> int:
    """The debug partition's node as sinfo shows it: `c` its CPUs, `m` its memory (MB)."""
    out = subprocess.run(["sinfo", "-h", "-p", "debug", "-o", f"%{field}"], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def queued() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_the_docs_command_runs_as_printed_three_jobs_and_the_report_reads_it(tiny_corpus, tmp_path):
    """docs/CLUSTERS.md's command, on the tests' tiny corpus; the request it makes is said in one line."""
    assert DOCS[:4] == ["python", "train.py", "-m", "hydra/launcher=slurm"] and "trainer=cpu" in DOCS
    run = [o for o in tiny_overrides(tiny_corpus) if not o.startswith("hydra.run.dir")]
    proc = run_train(*DOCS[2:], *run, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path, timeout=600)
    said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "SLURM request for partition" in ln]
    assert len(said) == 1 and said[0].endswith(
        f"SLURM request for partition debug: timeout_min=30 (its MaxTime), cpus_per_task={node('c')}, "
        f"mem_gb={node('m') // 1024} (its nodes'); set hydra.launcher.<key> to ask for less"
    )
    results = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/results.json")}
    assert sorted(results) == ["0", "1", "2"]
    assert [results[k]["cell"] for k in ("0", "1", "2")] == ["rnn", "gru", "lstm"]
    assert all(results[k]["epochs"] == 1 for k in results)
    for k in results:  # each job's test stage: its best checkpoint, evaluated again here, gives the same number
        again = eval_here(results[k]["best_checkpoint"], tiny_corpus, tmp_path / f"eval{k}", *TINY_EVAL)["test/ppl"]
        assert results[k]["metrics"]["test/ppl"] == pytest.approx(again, rel=1e-5), k
    assert len(list((tmp_path / "sweep" / ".submitit").glob("*_*/*_log.out"))) == 3  # each ran as a job of the array
    report = subprocess.run([sys.executable, "-m", "rnnlm.report", str(tmp_path / "sweep")], cwd=ROOT,
                            capture_output=True, text=True, check=True)  # fmt: skip
    for cell in ("rnn", "gru", "lstm"):
        assert f"model={cell}" in report.stdout


def test_a_failing_point_is_reported_and_the_others_finish(tiny_corpus, tmp_path):
    proc = sweep(tiny_corpus, tmp_path, "model.dropout=0.1,1.5,0.2", "trainer.max_epochs=1", check=False)
    assert proc.returncode != 0
    assert "(model.dropout=1.5; SLURM job " in proc.stderr
    assert ", FAILED) failed: model.dropout=1.5 must be a number in [0.0, 1.0)." in proc.stderr
    assert "error: 1 of 3 sweep jobs failed (above); the others finished" in proc.stderr
    assert sorted(p.parent.name for p in (tmp_path / "sweep").glob("*/results.json")) == ["0", "2"]


def test_a_preempted_job_is_requeued_and_resumes_to_the_uninterrupted_result(tiny_corpus, tmp_path):
    """Two identical points (they differ only in interrupt_grace_s); the second gets SLURM's pre-emption
    signal (USR2, what the time limit sends `signal_delay_s` before) after its first epoch."""
    import time

    run = [o for o in tiny_overrides(tiny_corpus) if not o.startswith("hydra.run.dir")]
    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *run, *SLURM, "trainer.max_epochs=12",
           "interrupt_grace_s=30,31", f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (sweep_dir / "1" / "checkpoints" / "last.ckpt").is_file():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() else "slow"
            time.sleep(0.2)
        job = next(j for j in job_ids(sweep_dir) if j.endswith("_1"))
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
        out, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
        subprocess.run(["scancel", *job_ids(sweep_dir)])  # a test that failed leaves no job running
    assert proc.returncode == 0, out[-3000:]
    err, out = ((sweep_dir / ".submitit" / job / f"{job}_0_log.{k}").read_text() for k in ("err", "out"))
    assert "SIGUSR2: the job's time limit is near (or it is pre-empted): finishing this batch" in err
    assert f"SLURM requeues this job; it resumes from {sweep_dir / '1' / 'checkpoints' / 'last.ckpt'}" in err
    assert f"Requeued job {job}" in out and f"resuming from {sweep_dir / '1' / 'checkpoints' / 'last.ckpt'}" in out
    first, second = (json.loads((sweep_dir / n / "results.json").read_text())["metrics"] for n in ("0", "1"))
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert second[key] == pytest.approx(first[key], rel=1e-6), key


def test_scancel_leaves_a_resumable_checkpoint_and_nothing_half_written(tiny_corpus, tmp_path):
    import time

    import torch

    run = [o for o in tiny_overrides(tiny_corpus) if not o.startswith("hydra.run.dir")]
    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *run, *SLURM, "trainer.max_epochs=30", "model=lstm",
           f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        last, deadline = sweep_dir / "0" / "checkpoints" / "last.ckpt", time.monotonic() + 300
        while not last.is_file():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.0)  # into the next epoch
        (job,) = job_ids(sweep_dir)  # one point: a plain job, not an array
        subprocess.run(["scancel", job], check=True)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        subprocess.run(["scancel", *job_ids(sweep_dir)])
    assert proc.returncode == 1 and "CANCELLED) failed:" in err and "1 of 1 sweep jobs failed" in err
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert step % 19 != 0  # saved mid-epoch, at the batch the signal came in (19 batches an epoch)
    assert not [p for p in (sweep_dir / "0").rglob("*") if p.name.endswith(".tmp")]


def test_a_partition_slurm_does_not_have_stops_the_sweep_before_anything_is_submitted(tiny_corpus, tmp_path):
    before = queued()
    proc = sweep(tiny_corpus, tmp_path, "model=rnn,gru", "hydra.launcher.partition=nosuch", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        "error: hydra.launcher.partition=nosuch is not a partition of this SLURM (it has: debug): set one of them."
    )
    proc = sweep(tiny_corpus, tmp_path, "model=rnn,gru", "hydra.launcher.timeout_min=600", check=False)
    assert proc.stderr.strip().endswith("time limit (30:00, 30 min): set it to at most 30.")
    proc = sweep(tiny_corpus, tmp_path, "model=rnn,gru", "hydra.launcher.mem_gb=100000", check=False)
    assert proc.stderr.strip().endswith(f"has ({node('m')} MB): set it to at most {node('m') // 1024}.")
    assert queued() == before
    assert not (tmp_path / "sweep" / ".submitit").exists()
