"""Every `python ...` command of docs/*.md, as the docs show it, on the tests' tiny files (slow tier).

Read the way tests/test_readme.py reads the README's, and shortened the same way (its materials, its
`localize`): a command the README shows too is tested there and left out here. Each command runs, in this
process, or as a real process where the process is the subject (a sweep, DDP). Where it cannot run here it is
composed and checked instead, and its test id says why: GPUs, a cluster, the Hub, or a benchmark's hours.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig

from tests.conftest import ROOT, compose_config
from tests.test_readme import localize, materials, readme_commands, run_here, workdir  # noqa: F401  (fixtures)

PREFIX = re.compile(r"^((?:[A-Z][A-Z0-9_]*=\S+\s+)*)(srun\s+)?(python\s.*)$")  # VAR=value ... [srun] python ...


@dataclass(frozen=True)
class DocCommand:
    doc: str
    line: int
    env: dict[str, str]
    command: str  # from `python` on, the comment cut
    srun: bool

    @property
    def why_not_run(self) -> str | None:
        """Why this command cannot run here (it is composed and checked instead), or None."""
        c = self.command
        if self.srun or "hydra/launcher=slurm" in c:
            return "needs SLURM"  # the local one runs CLUSTERS.md's debug-partition line: python -m pytest -m slurm
        if "ray.init.address=auto" in c:
            return "needs a Ray cluster"  # tests/test_ray_live.py starts one and joins it
        if not torch.cuda.is_available() and re.search(r"trainer=(gpu|ddp)\b|hydra\.launcher\.devices=", c):
            return "needs CUDA GPUs"
        if re.search(r"data\.name=ag_news|data=wikitext2$", c):
            return "needs the Hub"  # or a datasets cache holding the dataset
        if c.startswith("python -m bench"):
            return "a benchmark"  # minutes to hours; `python -m bench --quick` runs in tests/test_bench.py
        return None

    @property
    def id(self) -> str:
        why = self.why_not_run
        return f"{self.doc}:{self.line}" + (f" composed: {why}" if why else "")


def doc_commands() -> list[DocCommand]:
    """The `python ...` lines of docs/*.md's bash blocks, with the line each is on, less the README's own and
    the test commands (`python -m pytest`, the suite itself)."""
    in_readme, found = set(readme_commands()), []
    for path in sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text()
        for block in re.finditer(r"```bash\n(.*?)```", text, re.S):
            first = text.count("\n", 0, block.start(1)) + 1
            for i, line in enumerate(block.group(1).splitlines()):
                m = PREFIX.match(re.split(r"\s{2,}#", line)[0].strip())
                if not m or m.group(3).startswith("python -m pytest") or m.group(3) in in_readme:
                    continue
                env = dict(v.split("=", 1) for v in m.group(1).split())
                found.append(DocCommand(path.name, first + i, env, m.group(3), bool(m.group(2))))
    return found


COMMANDS = doc_commands()


def first_of_sweeps(args: list[str]) -> list[str]:
    """A sweep's first point (`model=rnn,gru` -> `model=rnn`), to compose what one of its jobs runs."""
    return [a.split(",")[0] if "=" in a and "," in a and "[" not in a else a for a in args]


def compose_and_check(command: DocCommand, m, run_dir: Path) -> None:
    """What a command that cannot run here can be checked for: its arguments parse (a benchmark's), or its
    config composes, passes rnnlm's checks, and names a launcher and data that can be built."""
    if command.command.startswith("python -m bench"):
        argv = shlex.split(command.command)
        module = __import__(argv[2] if argv[2] != "bench" else "bench.__main__", fromlist=["parse"])
        module.parse(argv[3:])
        return
    script, args = localize(re.sub(r"\$\{\w+\}", "1234", command.command), m)
    args = first_of_sweeps([a for a in args if a != "-m"])
    cfg = compose_config(*args, run_dir=run_dir, config=script.removesuffix(".py"))
    from rnnlm.run.build import build_datamodule
    from rnnlm.run.config_checks import check_config

    check_config(cfg)
    build_datamodule(cfg, None)  # the source checks its paths and settings; nothing is read
    launcher = HydraConfig.get().launcher._target_
    module, _, name = launcher.rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name) is not None, launcher


def run_process(command: DocCommand, m, cwd: Path, tmp_path: Path) -> None:
    """A sweep or a DDP run as the real process a user starts, its folders in tmp_path."""
    script, args = localize(command.command, m)
    if "-m" in args:
        args = [a for a in args if not a.startswith("hydra.run.dir")] + [f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    else:
        args += [f"hydra.run.dir={tmp_path / 'run'}"]
    env = {**os.environ, **command.env, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    program = script.split() if script.startswith("-m") else [str(ROOT / script)]  # a module: python -m rnnlm.ngram
    proc = subprocess.run([sys.executable, *program, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def test_the_docs_commands_are_read():
    """Every doc with commands is read, and the ones that cannot run here are few and named."""
    docs = {c.doc for c in COMMANDS}
    assert {"AWD.md", "CLUSTERS.md", "DATA.md", "STREAM.md", "SWEEPS.md", "WANDB.md", "RELIABILITY.md"} <= docs
    assert not [c.id for c in COMMANDS if c.command.rstrip().endswith("...")]  # a line to paste, not a sketch
    assert "python train.py data=hf data.name=text data.data_files.train=a.txt data.splits.val=null " \
           "data.splits.test=null" in [c.command for c in COMMANDS]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_docs_command(command, materials, workdir, tmp_path, monkeypatch, caplog):  # noqa: F811
    caplog.set_level(logging.INFO)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("WANDB_MODE", "offline")  # no credentials here: the offline path (tests/test_wandb.py)
    if command.why_not_run:
        compose_and_check(command, materials, tmp_path / "run")
        return
    script, args = localize(command.command, materials)
    if "hydra/launcher=ray" in args and importlib.util.find_spec("ray") is None:
        pytest.skip('needs the ray extra: pip install -e ".[ray]"')
    if script.startswith("-m") or "-m" in args or "trainer=ddp_cpu" in args or "hparams_search=optuna" in args:
        run_process(command, materials, workdir, tmp_path)
        return
    run_here(script, args, tmp_path / "run")
    if script == "train.py":
        assert (tmp_path / "run" / "results.json").is_file()
