"""scripts/gpu_check.sh, the GPU acceptance run, on this machine: every stage through the same code on the CPU
(so the scarce GPU window is not its first run), each stage's lines in report.md as it ends, bad input one
sentence with the stages that can still run run."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import torch

from bench import gpu_check
from tests.conftest import ROOT, tiny_overrides


def test_an_out_dir_that_cannot_be_written_is_one_sentence_and_the_stages_still_run(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert gpu_check.main([str(blocker / "out"), "--device", "cpu", "--only", "versions"]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"^error: OUT_DIR=\S+/a-file/out cannot be written \(.+\): the report goes to this terminal "
                     r"only; give a folder this user can write to keep it\.$", err, re.M)  # fmt: skip
    assert "| torch | " + torch.__version__ + " |" in out and "0 stage(s) failed" in out


def test_without_rnnlms_dependencies_or_the_wheel_folder_the_script_says_how_to_get_them(tmp_path):
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").write_text("#!/bin/sh\nexit 1\n")  # a machine where nothing of rnnlm's imports
    (shim / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "GPU_CHECK_WHEELS": str(tmp_path / "none")}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr == (
        f"error: rnnlm's dependencies are not installed and {tmp_path / 'none'}/ is missing: run bash "
        f"scripts/gpu_check.sh --prepare on a machine with registry access and carry {tmp_path / 'none'}/ here.\n"
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_device_cuda_without_a_gpu_is_one_sentence(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        gpu_check.main([str(tmp_path), "--device", "cuda"])
    assert stop.value.code == 2
    assert "--device cuda: torch sees no CUDA GPU here; use --device cpu or auto." in capsys.readouterr().err


@pytest.mark.slow
def test_the_whole_run_on_the_cpu(tiny_corpus, tmp_path):
    out = tmp_path / "out"
    data = [o for o in tiny_overrides(tiny_corpus) if o != "debug=tiny"]
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), str(out), "--device", "cpu", *data],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert report.strip() == proc.stdout.strip()  # the terminal and the file say the same
    for name, _ in gpu_check.STAGES:
        assert f"## {name}\n" in report
    assert "**failed**" not in report and report.rstrip().endswith("0 stage(s) failed")
    for cell in ("rnn", "gru", "lstm"):
        assert re.search(rf"^\| {cell} 2x200 \| 32-true( \| [\d,]+){{3}}( \| \d+\.\d\d){{2}} \|$", report, re.M)
    assert "- greedy: 4 of 4 continuations the same text" in report and "- 2 jobs, 2 results.json written" in report
    assert "- `trainer=ddp_cpu`: best val/ppl" in report
    assert len(list(out.iterdir())) <= 8
