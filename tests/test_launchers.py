"""The cluster launchers' configs: SLURM composes into the submitit request; Ray runs a real local sweep."""

from __future__ import annotations

import importlib.util

import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import ROOT, run_train, tiny_overrides


def compose_train(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_slurm_asks_for_one_task_per_gpu_of_the_ddp_run():
    cfg = compose_train("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp", "trainer.devices=4")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("gpu", 4, 4)
    assert launcher.timeout_min == 240 and launcher.max_num_timeout == 3


def test_the_default_multirun_launcher_is_the_gpu_pool():
    assert compose_train().hydra.launcher._target_.endswith("GpuPoolLauncher")


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason='needs the ray extra: pip install -e ".[ray]"')
def test_ray_runs_a_two_job_sweep_locally(tiny_corpus, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_corpus, tmp_path) if not o.startswith("hydra.run.dir")]
    run_train(
        "-m", *overrides, "hydra/launcher=ray", "hydra.launcher.ray.remote.num_gpus=0",
        "hydra.launcher.ray.remote.num_cpus=1", "trainer.max_epochs=1", "model.hidden_size=8,16",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
    )  # fmt: skip
    assert sorted(p.parent.name for p in (tmp_path / "sweep").glob("*/results.json")) == ["0", "1"]
