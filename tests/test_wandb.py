"""logger=wandb without credentials or a terminal: offline, never prompting, metrics readable afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rnnlm.lifecycle.loggers import wandb_credentials
from tests.conftest import ROOT, tiny_overrides
from tests.wandb_records import artifacts, history, run_info


def no_login_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    return {**env, "HOME": str(home), "NETRC": str(home / ".netrc"), "PYTHONUNBUFFERED": "1"}


def train(*overrides: str, cwd: Path, home: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides, "logger=wandb"],
        cwd=cwd, env=no_login_env(home), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def run_log(run_dir: Path) -> Path:
    (log,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    return log


@pytest.fixture(scope="module")
def sweep(tiny_corpus, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wandb")
    single = [o for o in tiny_overrides(tiny_corpus, tmp) if not o.startswith("hydra.run.dir")]
    proc = train(
        "-m", *single, "model.hidden_size=8,16", "logger.wandb.log_model=true", f"hydra.sweep.dir={tmp / 'sweep'}",
        cwd=tmp, home=tmp,
    )  # fmt: skip
    return tmp, proc


@pytest.mark.slow
def test_offline_without_credentials_and_metrics_are_in_the_run_log(sweep):
    tmp, proc = sweep
    assert "no credentials, logging offline" in proc.stdout + proc.stderr
    assert "wandb sync" in proc.stdout + proc.stderr
    for job in ("0", "1"):
        rows = history(run_log(tmp / "sweep" / job))
        results = json.loads((tmp / "sweep" / job / "results.json").read_text())
        val = [r["val/ppl"] for r in rows if "val/ppl" in r]
        assert val == pytest.approx([h["val/ppl"] for h in results["history"]], rel=1e-6)  # what the run logged
        for key in ("train/loss", "train/grad_norm", "lr-Adam", "test/ppl", "train/tokens_per_sec"):
            assert any(key in r for r in rows), key
        assert any(r.get("samples/_type") == "table-file" for r in rows)  # the generated-sample table
        config = run_info(run_log(tmp / "sweep" / job))["config"]
        assert config["model"]["cell"] == "lstm" and config["num_params"] == results["num_params"]
        models = [a for a in artifacts(run_log(tmp / "sweep" / job)) if a["type"] == "model"]
        assert any("best" in a["aliases"] for a in models)  # log_model=true: the best checkpoint as an artifact


@pytest.mark.slow
def test_runs_of_one_sweep_share_a_group(sweep):
    tmp, _ = sweep
    groups = {run_info(run_log(tmp / "sweep" / job))["group"] for job in ("0", "1")}
    assert len(groups) == 1 and groups.pop().startswith("train-")


@pytest.mark.slow
def test_a_resumed_run_continues_the_same_wandb_run(sweep, tiny_corpus):
    tmp, _ = sweep
    first = tmp / "sweep" / "0"
    resumed = tmp / "resumed"
    train(
        *tiny_overrides(tiny_corpus, resumed), "model.hidden_size=8", "trainer.max_epochs=3",
        f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}", cwd=tmp, home=tmp,
    )  # fmt: skip
    assert run_info(run_log(resumed))["id"] == run_info(run_log(first))["id"]
    epochs = [r["epoch"] for r in history(run_log(resumed)) if "val/ppl" in r]
    assert epochs == [2]  # the resumed run logged only the epoch it trained


def test_credentials_are_found_in_the_environment_or_netrc(tmp_path, monkeypatch):
    for key in ("WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    assert not wandb_credentials()
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    (tmp_path / ".netrc").chmod(0o600)
    assert wandb_credentials()
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_credentials()


def test_wandb_sweep_config_names_real_overrides():
    from hydra import compose, initialize_config_dir

    spec = yaml.safe_load((ROOT / "conf" / "wandb_sweep.yaml").read_text())
    assert spec["program"] == "train.py" and "${args_no_hyphens}" in spec["command"]
    assert spec["metric"] == {"name": "val/ppl", "goal": "minimize"}
    overrides = []
    for key, param in spec["parameters"].items():
        value = param["values"][0] if "values" in param else param.get("min", param.get("value"))
        overrides.append(f"{key}={value}")
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)  # an unknown key or group option would raise here
    assert cfg.model.cell in ("rnn", "gru", "lstm")
