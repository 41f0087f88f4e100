"""The gpu_pool launcher: concurrent jobs get distinct cards, a failing job frees its card, CPU fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rnnlm.sweeps.gpu_pool import DevicePool, visible_gpus
from tests.conftest import ROOT

APP = ROOT / "tests" / "apps" / "pool_app.py"


def test_claims_are_exclusive_and_released(tmp_path):
    pool = DevicePool(["0", "1"], tmp_path)
    with pool.claim() as first, pool.claim() as second:
        assert {first, second} == {"0", "1"}
        assert pool.try_claim() is None  # both held (flock is per open file, so this holds in-process too)
        assert sorted(pool.held()) == ["0", "1"]
    assert pool.held() == []


def test_a_card_listed_twice_offers_two_slots(tmp_path):
    pool = DevicePool(["0", "0", "1"], tmp_path)
    with pool.claim() as a, pool.claim() as b, pool.claim() as c:
        assert sorted((a, b, c)) == ["0", "0", "1"]
        assert pool.try_claim() is None


def test_a_claim_is_released_when_the_job_raises(tmp_path):
    pool = DevicePool(["0"], tmp_path)
    try:
        with pool.claim():
            raise RuntimeError("job failed")
    except RuntimeError:
        pass
    with pool.claim() as device:
        assert device == "0"


def test_a_killed_holder_frees_its_card(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from rnnlm.sweeps.gpu_pool import DevicePool; import time\n"
         f"with DevicePool(['7'], {str(tmp_path)!r}).claim(): print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    pool = DevicePool(["7"], tmp_path)
    assert pool.held() == ["7"]
    holder.kill()
    holder.wait()
    assert pool.held() == []


def test_no_gpus_means_an_empty_pool(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"]
    with DevicePool([]).claim() as device:
        assert device is None


def sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, str(APP), "-m", "hydra/launcher=gpu_pool", f"hydra.launcher.lock_dir={tmp_path / 'locks'}",
         "hydra.launcher.poll_s=0.2", f"hydra.sweep.dir={tmp_path / 'sweep'}", f"+out={out}", *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )  # fmt: skip


def records(tmp_path: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("*.json"))]


def overlapping(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_concurrent_jobs_never_share_a_card(tmp_path):
    proc = sweep(tmp_path, "hydra.launcher.devices=[a,b]", "+i=1,2,3,4,5,6", "+sleep=1.5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = records(tmp_path)
    assert len(runs) == 6 and {r["device"] for r in runs} == {"a", "b"}
    for x in runs:
        for y in runs:
            if x is not y and overlapping(x, y):
                assert x["device"] != y["device"], (x, y)
    # two cards, two at a time: some jobs did overlap (none sat idle waiting for the others to finish)
    assert any(overlapping(x, y) for x in runs for y in runs if x is not y)
    assert DevicePool(["a", "b"], tmp_path / "locks").held() == []


def test_a_failing_job_frees_its_card_and_the_sweep_goes_on(tmp_path):
    # job 1 fails at once; the other three still run, on both cards, and the sweep then reports the failure
    proc = sweep(tmp_path, "hydra.launcher.devices=[a,b]", "+i=1,2,3,4", "+fail_on=1", "+sleep=1.0")
    assert proc.returncode != 0
    assert "job 1 failed on purpose" in proc.stderr
    runs = records(tmp_path)
    assert sorted(r["i"] for r in runs) == [2, 3, 4]
    assert {r["device"] for r in runs} == {"a", "b"}
    assert DevicePool(["a", "b"], tmp_path / "locks").held() == []


def test_without_gpus_jobs_run_on_the_cpu_one_at_a_time(tmp_path):
    proc = sweep(tmp_path, "hydra.launcher.devices=[]", "+i=1,2,3", "+sleep=0.5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = records(tmp_path)
    assert len(runs) == 3 and all(r["device"] == "" for r in runs)
    assert not any(overlapping(x, y) for x in runs for y in runs if x is not y)
