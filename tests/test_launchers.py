"""The cluster launchers' configs and failure reports (live: test_slurm_live.py, test_ray_live.py)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

import rnnlm.sweeps.resolvers  # noqa: F401  (as train.py: the launcher configs use its resolvers)
from tests.conftest import ROOT


def compose_train(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_slurm_asks_for_one_task_per_gpu_of_the_ddp_run():
    cfg = compose_train("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp", "trainer.devices=4")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("gpu", 4, 4)
    assert launcher.max_num_timeout == 3
    # null: the partition's MaxTime and what its nodes have, filled in by the launcher from sinfo (below)
    assert (launcher.timeout_min, launcher.cpus_per_task, launcher.mem_gb) == (None, None, None)


def test_slurm_asks_a_cpu_run_for_no_gpu():
    for trainer, gpus, tasks in (("trainer=cpu", 0, 1), ("trainer=ddp_cpu", 0, 2), ("trainer=gpu", 1, 1)):
        launcher = compose_train("hydra/launcher=slurm", trainer).hydra.launcher
        assert (launcher.gpus_per_node, launcher.tasks_per_node) == (gpus, tasks), trainer


def test_ray_asks_one_gpu_per_device_and_a_cpu_run_for_none():
    for trainer, gpus in (("trainer=default", 1), ("trainer=cpu", 0), ("trainer=ddp_cpu", 0), ("trainer=gpu", 1)):
        remote = compose_train("hydra/launcher=ray", trainer).hydra.launcher.ray.remote
        assert (remote.num_gpus, remote.max_retries, remote.max_calls) == (gpus, 2, 1), trainer


def test_a_ray_job_bigger_than_every_node_is_one_sentence():
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    from hydra_plugins.rnnlm_ray import check_fits

    nodes = [{"CPU": 2.0, "memory": 1e9}, {"CPU": 8.0, "GPU": 1.0}]
    check_fits(nodes, {"num_gpus": 1, "num_cpus": 8})  # the second node takes it
    with pytest.raises(SystemExit, match=r"^error: hydra.launcher.ray.remote.num_gpus=2 is more than any node of the "
                       r"Ray cluster has \(at most 1 GPU\): set it to at most 1 \(0 runs on CPUs: trainer=cpu sets "
                       r"it so\)\.$"):  # fmt: skip
        check_fits(nodes, {"num_gpus": 2, "num_cpus": 1})
    with pytest.raises(
        SystemExit, match=r"remote.num_cpus=4 is more than .* \(at most 2 CPU\): set it to at most 2\.$"
    ):
        check_fits(nodes[:1], {"num_gpus": 0, "num_cpus": 4})


def test_ray_jobs_fit_what_is_there_where_the_settings_leave_it_open():
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    from hydra_plugins.rnnlm_ray import fit_to_nodes

    cpu_box, gpu_box = [{"CPU": 2.0}], [{"CPU": 2.0}, {"CPU": 16.0, "GPU": 2.0}]
    asked = {"num_gpus": 1, "num_cpus": 4, "max_calls": 1}
    assert fit_to_nodes(asked, cpu_box, "auto", started_here=True) == {"num_gpus": 0, "num_cpus": 2.0, "max_calls": 1}
    assert fit_to_nodes(asked, cpu_box, "auto", started_here=False) == {**asked, "num_gpus": 0}  # a cluster: as asked
    assert fit_to_nodes(asked, cpu_box, "gpu", started_here=True)["num_gpus"] == 1  # trainer=gpu: refused later
    assert fit_to_nodes(asked, gpu_box, "auto", started_here=True) == asked


def test_the_default_multirun_launcher_is_the_gpu_pool():
    assert compose_train().hydra.launcher._target_.endswith("GpuPoolLauncher")


def fake_sinfo(monkeypatch, text: str) -> None:
    import subprocess

    from hydra_plugins import rnnlm_slurm

    result = subprocess.CompletedProcess(["sinfo"], 0, stdout=text, stderr="")
    monkeypatch.setattr(rnnlm_slurm.subprocess, "run", lambda *a, **k: result)


# `sinfo -h -o "%P %l %L %c %m %G"`: a line per kind of node (the default partition starred); MB of memory
SINFO = """debug* 30:00 n/a 2 23081 (null)
gpu 2-00:00:00 n/a 64 515000 gpu:a100:8(S:0-1)
gpu 2-00:00:00 n/a 32 257000 gpu:a100:8(S:0-1)
gpu 2-00:00:00 n/a 16 128000 (null)
mixed 1:30:30 n/a 48 192000 gpu:v100:4,mps:100
mixed 1:30:30 n/a 24 100000 gpu:2
long infinite 1-00:00:00 8 32000+ (null)
open UNLIMITED n/a 4 8192 (null)
"""


def fit(*, partition=None, timeout_min=None, cpus_per_task=None, mem_gb=None, gpus_per_node=0, tasks_per_node=1):
    from hydra_plugins.rnnlm_slurm import fit_request

    request = {"partition": partition, "timeout_min": timeout_min, "cpus_per_task": cpus_per_task, "mem_gb": mem_gb}
    return fit_request({**request, "gpus_per_node": gpus_per_node, "tasks_per_node": tasks_per_node})


def test_slurm_requests_are_checked_against_the_partitions_before_anything_is_submitted(monkeypatch):
    from hydra_plugins.rnnlm_slurm import _minutes

    assert [_minutes(t) for t in ("30:00", "45", "2:00:00", "1-02:03:00", "UNLIMITED", "n/a")] == [
        30, 45, 120, 1563, None, None]  # fmt: skip
    fake_sinfo(monkeypatch, SINFO)
    for partition, minutes in (("debug", 30), (None, 5), ("gpu", 2880), ("long", 10**6), ("open", 10**6)):
        assert fit(partition=partition, timeout_min=minutes, cpus_per_task=1, mem_gb=1) == {}  # within: kept
    with pytest.raises(SystemExit, match=r"partition=nosuch is not a partition of this SLURM \(it has: debug, gpu, "
                                         r"long, mixed, open\): set one of them\.$"):  # fmt: skip
        fit(partition="nosuch", timeout_min=5)
    with pytest.raises(SystemExit, match=r"^error: hydra.launcher.timeout_min=240 is over partition debug's time limit "
                                         r"\(30:00, 30 min\): set it to at most 30\.$"):  # fmt: skip
        fit(timeout_min=240)  # the default partition's limit
    with pytest.raises(SystemExit, match=r"timeout_min=91 is over .* \(1:30:30, 90.5 min\): set it to at most 90\.$"):
        fit(partition="mixed", timeout_min=91)
    with pytest.raises(SystemExit, match=r"^error: hydra.launcher.cpus_per_task=4 is more than any node of partition "
                                         r"debug has \(2 CPUs\): set it to at most 2\.$"):  # fmt: skip
        fit(cpus_per_task=4)
    with pytest.raises(SystemExit, match=r"cpus_per_task=20 \(times 4 tasks\) is more than any node of partition gpu "
                                         r"has \(64 CPUs\): set it to at most 16\.$"):  # fmt: skip
        fit(partition="gpu", cpus_per_task=20, gpus_per_node=4, tasks_per_node=4)
    with pytest.raises(SystemExit, match=r"^error: hydra.launcher.mem_gb=64 is more than any node of partition debug "
                                         r"has \(23081 MB\): set it to at most 22\.$"):  # fmt: skip
        fit(mem_gb=64)


def test_slurm_requests_left_null_get_the_partitions_time_and_nodes_said_in_one_line(monkeypatch, caplog):
    fake_sinfo(monkeypatch, SINFO)
    caplog.set_level("INFO", logger="hydra_plugins.rnnlm_slurm")
    # the local script's node: 2 CPUs, its memory less 1 GiB (23081 MB: 22 whole GB, SLURM's GB being 1024 MB)
    assert fit(partition="debug") == {"timeout_min": 30, "cpus_per_task": 2, "mem_gb": 22}
    assert caplog.messages == ["SLURM request for partition debug: timeout_min=30 (its MaxTime), cpus_per_task=2, "
                               "mem_gb=22 (its nodes'); set hydra.launcher.<key> to ask for less"]  # fmt: skip
    caplog.clear()
    assert fit() == {"timeout_min": 30, "cpus_per_task": 2, "mem_gb": 22}  # no partition: the default one
    assert fit(partition="debug", timeout_min=10, cpus_per_task=1, mem_gb=2) == {}  # set within: kept, nothing said
    assert fit(partition="debug", mem_gb=2) == {"timeout_min": 30, "cpus_per_task": 2}
    assert caplog.messages[-1] == ("SLURM request for partition debug: timeout_min=30 (its MaxTime), cpus_per_task=2 "
                                   "(its nodes'); set hydra.launcher.<key> to ask for less")  # fmt: skip
    assert len(caplog.messages) == 2
    # a GPU job: its share of the smallest node with the GPUs (the GPU-less kind cannot run it), per task
    assert fit(partition="gpu", gpus_per_node=1) == {"timeout_min": 2880, "cpus_per_task": 4, "mem_gb": 31}
    assert caplog.messages[-1] == ("SLURM request for partition gpu: timeout_min=2880 (its MaxTime), cpus_per_task=4, "
                                   "mem_gb=31 (its smallest nodes' share for 1 of their 8 GPUs); set "
                                   "hydra.launcher.<key> to ask for less")  # fmt: skip
    assert fit(partition="gpu", gpus_per_node=4, tasks_per_node=4)["cpus_per_task"] == 4  # 16 CPUs of 32, 4 tasks
    assert fit(partition="gpu", gpus_per_node=8, tasks_per_node=8, timeout_min=60) == {
        "cpus_per_task": 4, "mem_gb": 250}  # fmt: skip
    # a CPU job (trainer=cpu: gpus_per_node 0) fits every node; a partition's time in seconds is cut to a minute
    assert fit(partition="gpu") == {"timeout_min": 2880, "cpus_per_task": 16, "mem_gb": 125}
    assert fit(partition="mixed", gpus_per_node=2) == {"timeout_min": 90, "cpus_per_task": 24, "mem_gb": 93}
    assert "(its smallest nodes' share for 2 GPUs); set hydra.launcher" in caplog.messages[-1]  # 4 GPUs and 2
    assert fit(partition="mixed", gpus_per_node=4) == {"timeout_min": 90, "cpus_per_task": 48, "mem_gb": 187}
    assert "mem_gb=187 (its nodes')" in caplog.messages[-1]  # only the 4-GPU kind can run it, all of it
    # no MaxTime: the partition's DefaultTime, else a day (submitit needs a number)
    assert fit(partition="long") == {"timeout_min": 1440, "cpus_per_task": 8, "mem_gb": 31}
    assert "timeout_min=1440 (its DefaultTime; it has no MaxTime)" in caplog.messages[-1]
    assert fit(partition="open", cpus_per_task=2, mem_gb=4) == {"timeout_min": 1440}
    assert caplog.messages[-1] == ("SLURM request for partition open: timeout_min=1440 (a day: it has no time limit); "
                                   "set hydra.launcher.<key> to ask for less")  # fmt: skip


def test_what_the_filled_request_asks_sbatch_for():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from submitit.slurm.slurm import _convert_mem, _make_sbatch_string

    sbatch = _make_sbatch_string(command="x", folder="/tmp/f", time=30, cpus_per_task=2, mem=_convert_mem(22),
                                 gpus_per_node=0, ntasks_per_node=1)  # fmt: skip
    assert {"#SBATCH --time=30", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=22GB"} <= set(sbatch.splitlines())
    assert "#SBATCH --gpus-per-node=0" in sbatch  # trainer=cpu: no GPU (a partition without GPUs takes it)


def test_slurm_launch_fills_the_request_before_it_submits(monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra.utils import instantiate

    fake_sinfo(monkeypatch, SINFO)
    cfg = compose_train("hydra/launcher=slurm", "hydra.launcher.partition=debug", "trainer=cpu")
    launcher = instantiate(cfg.hydra.launcher)
    submitted = {}
    monkeypatch.setattr(launcher, "_submit", lambda *a: submitted.update(launcher.params) or [])
    monkeypatch.setattr(launcher, "_wait", lambda *a: [])
    launcher.launch([["model=rnn"]], 0)
    assert {k: submitted[k] for k in ("timeout_min", "cpus_per_task", "mem_gb", "gpus_per_node")} == {
        "timeout_min": 30, "cpus_per_task": 2, "mem_gb": 22, "gpus_per_node": 0}  # fmt: skip


def test_slurm_without_sinfo_says_where_to_run_the_sweep(monkeypatch):
    from hydra_plugins import rnnlm_slurm

    def missing(*a, **k):
        raise FileNotFoundError("No such file or directory: 'sinfo'")

    monkeypatch.setattr(rnnlm_slurm.subprocess, "run", missing)
    with pytest.raises(SystemExit, match=r"needs SLURM's sinfo and sbatch here .*: run the sweep on a SLURM login"):
        rnnlm_slurm.fit_request({"partition": "debug", "timeout_min": 5})


def test_a_refused_sbatch_is_quoted_in_slurms_own_words():
    from hydra_plugins.rnnlm_slurm import _reason

    err = RuntimeError("sbatch: error: Batch job submission failed: Invalid account or account/partition combination")
    assert _reason(err) == "Batch job submission failed: Invalid account or account/partition combination"
    assert _reason(RuntimeError("Traceback\n  ...\nOSError: boom")) == "OSError: boom"


class FakeJob:
    """What the SLURM launcher's wait reads of a submitit job: its files, its id, its result."""

    def __init__(self, folder, job_id: str, result=None, error: str | None = None, stderr: str = "") -> None:
        from types import SimpleNamespace

        folder.mkdir(parents=True)
        self.job_id, self._result, self._error = job_id, result, error
        self.paths = SimpleNamespace(folder=folder, stderr=folder / "log.err", result_pickle=folder / "result.pkl")
        self.paths.result_pickle.write_text("done")
        self.paths.stderr.write_text(stderr)

    def results(self):
        if self._error:
            raise RuntimeError(f"Job raised\nTraceback ...\n{self._error}")
        return [self._result]


def test_a_failed_slurm_point_is_named_by_what_varies_and_by_its_own_words(tmp_path, capsys):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra_plugins.rnnlm_slurm import RnnlmSlurmLauncher

    shared = ["trainer=cpu", "data=text"]
    jobs = [
        FakeJob(tmp_path / "0", "7_0", result="ok0"),
        FakeJob(tmp_path / "1", "7_1", error="SystemExit: 2", stderr="noise\nerror: model.dropout=1.5 must be ...\n"),
        FakeJob(tmp_path / "2", "7_2", error="ValueError: bad shape", stderr="submitit INFO: starting\n"),
    ]
    overrides = [[*shared, f"model.dropout={p}"] for p in ("0.1", "1.5", "0.2")]
    with pytest.raises(SystemExit, match=r"2 of 3 sweep jobs failed \(above\); the others finished"):
        RnnlmSlurmLauncher._wait(jobs, overrides, 0, poll_s=0)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "error: job #1 (model.dropout=1.5; SLURM job 7_1, FAILED) failed: model.dropout=1.5 must be ...",
        "error: job #2 (model.dropout=0.2; SLURM job 7_2, FAILED) failed: ValueError: bad shape",
    ]
    alone = [FakeJob(tmp_path / "3", "8_0", error="KeyError: 'x'")]
    with pytest.raises(SystemExit):
        RnnlmSlurmLauncher._wait(alone, [shared], 0, poll_s=0)
    assert "job #0 (the only point; SLURM job 8_0, FAILED) failed: KeyError: 'x'" in capsys.readouterr().err
