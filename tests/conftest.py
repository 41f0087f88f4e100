"""Shared fixtures: a tiny corpus the tests write themselves, runs of train.py in this process (the fast
tier) and as real processes (where the process is the subject: exit codes, signals, DDP, launchers).

Tiers: `python -m pytest` runs the fast tier (under 3 minutes on 2 cores); `python -m pytest -m slow`
the tests that start real processes (train.py as the README shows it, DDP, signals, sweeps) and a real
PTB epoch. CI runs both.

The fast tier runs on two pytest-xdist workers, one torch thread each: its tests are small models whose
time goes to Python (Lightning, Hydra), so two processes finish it in ~0.6x the time of one with two
threads. The slow and slurm tiers, and a run of named tests, stay in one process (`-n auto` resolves to 0
there: their tests time processes, signals and sweeps, which two workers would crowd).
"""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict, read_write

ROOT = Path(__file__).resolve().parent.parent
WORDS = "the a cat dog sat ran on under mat log red big small quickly slowly and".split()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` (pyproject's addopts): two workers for the whole default tier, none otherwise."""
    tiers = config.getoption("markexpr") or ""
    chosen = [a for a in config.args if Path(a).resolve() != ROOT / "tests"]
    if chosen or "slow" in tiers.replace("not slow", "") or "slurm" in tiers.replace("not slurm", ""):
        return 0
    return 2 if (os.cpu_count() or 1) >= 2 else 0


if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker: one thread each, for its processes too
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def make_sentences(n: int, seed: int) -> list[str]:
    """Sentences with some structure (so a model can learn), lengths 2..9 words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(2, 9)
        words = [rng.choice(WORDS[:4])]
        while len(words) < length:
            words.append(WORDS[(WORDS.index(words[-1]) + rng.choice((1, 2, 3))) % len(WORDS)])
        out.append(" ".join(words))
    return out


@pytest.fixture(scope="session", autouse=True)
def corpus_cache(tmp_path_factory) -> Path:
    """Runs of train.py keep encoded corpora here, never in the user's home."""
    d = tmp_path_factory.mktemp("cache")
    os.environ["RNNLM_CACHE_DIR"] = str(d)
    return d


@pytest.fixture(autouse=True)
def no_hydra_config_left():
    """A test that composed a config leaves no Hydra run config behind for the next one."""
    yield
    HydraConfig.instance().cfg = None


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    paths = {}
    for split, n, seed in (("train", 240, 0), ("val", 40, 1), ("test", 40, 2)):
        paths[split] = d / f"{split}.txt"
        paths[split].write_text("\n".join(make_sentences(n, seed)) + "\n")
    return paths


def tiny_overrides(corpus: dict[str, Path], run_dir: Path | None = None) -> list[str]:
    """A train.py run that takes seconds: the `debug=tiny` preset on the tiny corpus."""
    data = [f"data.{s}_path={corpus[s]}" for s in ("train", "val", "test")]
    return ["debug=tiny", "data=text", *data, *([f"hydra.run.dir={run_dir}"] if run_dir else [])]


def compose_config(*overrides: str, run_dir: Path | None = None, config: str = "train") -> DictConfig:
    """The config `python <config>.py <overrides>` would run with, its run folder `run_dir`, composed here.
    Hydra's run config is installed too, so what reads it (the overrides in results.json) sees a run."""
    overrides = [o for o in overrides if not o.startswith("hydra.run.dir=")]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name=config, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir or Path.cwd())
        cfg.hydra.job.name = config
        if "paths" in cfg:
            cfg.paths.output_dir = str(run_dir or Path.cwd())
    HydraConfig.instance().set_config(cfg)
    task = copy.deepcopy(cfg)  # as Hydra hands the config to the task: a copy without its own node
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def train_here(*overrides: str, run_dir: Path) -> dict[str, float]:
    """train.py's run in this process: the same config, the same train(), no interpreter start (~5 s)."""
    from rnnlm.run.train import train

    return train(compose_config(*overrides, run_dir=run_dir))


def eval_here(ckpt: str | Path, corpus: dict[str, Path], run_dir: Path, *overrides: str) -> dict[str, float]:
    """eval.py in this process: a checkpoint's numbers on `corpus` as data=text, with `overrides`."""
    from rnnlm.run.evaluate import evaluate

    data = ["data=text", *(f"data.{s}_path={corpus[s]}" for s in ("train", "val", "test"))]
    return evaluate(compose_config(f"ckpt_path={ckpt}", *data, *overrides, run_dir=run_dir, config="eval"))


# eval.py on the tiny corpus batched as debug=tiny batches it, the test split only.
TINY_EVAL = ("data.batch_size=16", "data.eval_batch_size=16", "splits=[test]", "trainer.accelerator=cpu")


@pytest.fixture(scope="session")
def trained(tiny_corpus, tmp_path_factory) -> Path:
    """The run folder of a 3-epoch tiny run (checkpoints/, csv/, samples.txt, results.json)."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    train_here(*tiny_overrides(tiny_corpus), "trainer.max_epochs=3", run_dir=run_dir)
    return run_dir


def run_train(
    *overrides: str, cwd: Path, check: bool = True, script: str = "train.py", timeout: float = 600
) -> subprocess.CompletedProcess:
    """train.py (or another entry point) as a real process, as a user starts it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), *overrides],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc
