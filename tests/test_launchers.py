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
    assert launcher.timeout_min == 240 and launcher.max_num_timeout == 3


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


def test_slurm_requests_are_checked_against_the_partitions_before_anything_is_submitted(monkeypatch):
    from hydra_plugins.rnnlm_slurm import _minutes, check_request

    assert [_minutes(t) for t in ("30:00", "45", "2:00:00", "1-02:03:00", "UNLIMITED")] == [30, 45, 120, 1563, None]
    fake_sinfo(monkeypatch, "debug* 30:00\ngpu 2-00:00:00\nlong infinite\n")
    for partition, minutes in (("debug", 30), (None, 5), ("gpu", 2880), ("long", 10**6)):
        check_request(partition, minutes)  # within the limits: nothing said
    with pytest.raises(SystemExit, match=r"partition=nosuch is not a partition of this SLURM \(it has: debug, gpu, "
                                         r"long\): set one of them\.$"):  # fmt: skip
        check_request("nosuch", 5)
    with pytest.raises(SystemExit, match=r"timeout_min=240 is over partition debug's time limit \(30:00, 30 min\): "
                                         r"set it to at most 30\.$"):  # fmt: skip
        check_request(None, 240)  # the default partition's limit


def test_slurm_without_sinfo_says_where_to_run_the_sweep(monkeypatch):
    from hydra_plugins import rnnlm_slurm

    def missing(*a, **k):
        raise FileNotFoundError("No such file or directory: 'sinfo'")

    monkeypatch.setattr(rnnlm_slurm.subprocess, "run", missing)
    with pytest.raises(SystemExit, match=r"needs SLURM's sinfo and sbatch here .*: run the sweep on a SLURM login"):
        rnnlm_slurm.check_request("debug", 5)


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
