"""Shared fixtures: a tiny corpus the tests write themselves, and a runner for the real train.py."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORDS = "the a cat dog sat ran on under mat log red big small quickly slowly and".split()


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


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    paths = {}
    for split, n, seed in (("train", 240, 0), ("val", 40, 1), ("test", 40, 2)):
        paths[split] = d / f"{split}.txt"
        paths[split].write_text("\n".join(make_sentences(n, seed)) + "\n")
    return paths


@pytest.fixture(scope="session")
def trained(tiny_corpus, tmp_path_factory) -> Path:
    """The run folder of a 3-epoch tiny train.py run (checkpoints/, csv/, samples.txt)."""
    tmp = tmp_path_factory.mktemp("trained")
    run_dir = tmp / "run"
    run_train(*tiny_overrides(tiny_corpus, run_dir), "trainer.max_epochs=3", cwd=tmp)
    return run_dir


def tiny_overrides(corpus: dict[str, Path], run_dir: Path) -> list[str]:
    """A train.py run that takes seconds: tiny data, tiny model, CPU."""
    return [
        "data=text",
        f"data.train_path={corpus['train']}",
        f"data.val_path={corpus['val']}",
        f"data.test_path={corpus['test']}",
        "data.batch_size=16",
        "data.eval_batch_size=16",
        "model.embed_size=16",
        "model.hidden_size=16",
        "trainer=cpu",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=5",
        f"hydra.run.dir={run_dir}",
    ]


def run_train(
    *overrides: str, cwd: Path, check: bool = True, script: str = "train.py", timeout: float = 600
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / script), *overrides],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc
