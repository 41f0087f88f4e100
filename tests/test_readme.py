"""Every command and code block of the README, as the README shows it, on the tests' tiny files.

The commands are read from README.md itself, so a command added there is tested here. Each keeps its own
settings; only the data is made small (the tiny corpus, a 16-wide model unless the command sets a size,
a few batches), the README's file names point at small files of that kind, and its checkpoint at a
tiny trained one. The fast tier runs each train.py / eval.py / generate.py command's work in this
process, and the main command (`python train.py`) as a real process; the slow tier runs every command as
a real process, sweeps included.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import ROOT, compose_config, make_sentences, run_train, tiny_overrides
from tests.test_sources import make_acl_imdb

README = (ROOT / "README.md").read_text()
NEEDS_GPU = ("trainer=gpu", "trainer=ddp")


def readme_commands() -> list[str]:
    """The `python ...` lines of the README's bash blocks, comments cut, the install and test lines left out."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            command = re.split(r"\s{2,}#", line)[0].strip()
            if command.startswith("python ") and not command.startswith("python -m pytest"):
                found.append(command)
    return found


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, re.S)


@dataclass
class Materials:
    """Small stand-ins for what the README's commands name."""

    root: Path
    corpus: dict[str, Path]
    ckpt: Path

    def path(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="module")
def materials(trained, tiny_corpus, tmp_path_factory) -> Materials:
    root = tmp_path_factory.mktemp("readme")
    (root / "book.txt").write_text(" ".join(s.capitalize() + "." for s in make_sentences(300, 5)))
    docs = [" ".join(s.capitalize() + "." for s in make_sentences(3, i)) for i in range(120)]
    pd.DataFrame({"review": docs}).to_parquet(root / "reviews.parquet")
    make_acl_imdb(root / "data")
    (root / "data" / "corpus").mkdir()  # data=hf's folder: the dataset's splits as text files
    for split, n, seed in (("train", 300, 0), ("validation", 40, 1), ("test", 40, 2)):
        (root / "data" / "corpus" / f"{split}.txt").write_text("\n".join(make_sentences(n, seed)) + "\n")
    (root / "data" / "wikitext-2").mkdir()  # a WikiText-like copy: blank lines and headings between sentences
    for split, n, seed in (("train", 400, 0), ("valid", 60, 1), ("test", 60, 2)):
        lines = [
            line for i, s in enumerate(make_sentences(n, seed)) for line in ([s] if i % 5 else ["", f"= {s} =", ""])
        ]
        (root / "data" / "wikitext-2" / f"wiki.{split}.tokens").write_text("\n".join(lines) + "\n")
    shutil.copytree(root / "data" / "corpus", root / "data" / "my_corpus")  # docs/DATA.md's names for the same
    shutil.copytree(root / "data" / "wikitext-2", root / "data" / "wikitext-103")
    rare = [f"w{i}" for i in range(201_000)]  # WikiText-103's vocabulary is 267k: room for the docs' adaptive cutoffs
    with open(root / "data" / "wikitext-103" / "wiki.train.tokens", "a") as f:
        f.writelines(" ".join(rare[i : i + 25]) + "\n" for i in range(0, len(rare), 25))
    (root / "data" / "reviews").mkdir()  # data=hf on a folder of CSV files with a review column
    for split, n, seed in (("train", 60, 0), ("validation", 10, 1), ("test", 10, 2)):
        prose = [" ".join(s.capitalize() + "." for s in make_sentences(3, seed * 100 + i)) for i in range(n)]
        pd.DataFrame({"review": prose}).to_csv(root / "data" / "reviews" / f"{split}.csv", index=False)
    (root / "a.txt").write_text("\n".join(make_sentences(300, 3)) + "\n")
    (root / "prompts.txt").write_text("the cat\na dog\n")
    shutil.copy(tiny_corpus["val"], root / "sentences.txt")
    return Materials(root, tiny_corpus, trained / "checkpoints" / "last.ckpt")


@pytest.fixture
def workdir(materials, tmp_path) -> Path:
    """Where a command runs: a folder of its own, with an earlier run in ./outputs/train (for ckpt_path=last)."""
    cwd = tmp_path / "cwd"
    shutil.copytree(materials.ckpt.parent, cwd / "outputs" / "train" / "runs" / "earlier" / "checkpoints")
    return cwd


def localize(command: str, m: Materials, sweep_dir: Path | None = None) -> tuple[str, list[str]]:
    """The script and its arguments, the README's files replaced by the small ones, the data made tiny."""
    argv = shlex.split(command.replace("$CKPT", str(m.ckpt)))
    script = argv[1] if argv[1] != "-m" else "-m " + argv[2]
    args = argv[2:] if argv[1] != "-m" else argv[3:]
    names = {"train.txt": m.corpus["train"], "valid.txt": m.corpus["val"], "test.txt": m.corpus["test"],
             "/data": m.path("data"), "outputs/train/runs/<date_time>/checkpoints/last.ckpt": m.ckpt,
             "outputs/train/multiruns/<date_time>": sweep_dir, "/data/corpus": m.path("data") / "corpus",
             "/data/wikitext-2": m.path("data") / "wikitext-2", "/data/wikitext-103": m.path("data") / "wikitext-103",
             "/data/my_corpus": m.path("data") / "my_corpus", "/data/reviews": m.path("data") / "reviews",
             "outputs/train/<run>/checkpoints/<best>.ckpt": m.ckpt,
             "outputs/ngram/runs/<date_time>": m.path("ngram_run")}  # fmt: skip
    for name in ("a.txt", "book.txt", "reviews.parquet", "prompts.txt", "sentences.txt", "samples.jsonl", "many.jsonl"):
        names[name] = m.path(name)
    out = []
    for arg in args:
        key, _, value = arg.partition("=")
        out.append(f"{key}={names[value]}" if value in names else names.get(arg, arg))
    if script in ("train.py", "eval.py"):
        out = tiny(out, m, script)
    if "hparams_search=optuna" in out:  # the search as the docs start it, two trials long
        out = [a for a in out if not a.startswith("hydra.sweeper.n_trials=")] + ["hydra.sweeper.n_trials=2"]
    return script, [str(a) for a in out]


def tiny(args: list[str], m: Materials, script: str) -> list[str]:
    flags = [a for a in args if a.startswith("-")]  # -m goes before the overrides
    args = [a for a in args if not a.startswith("-")]
    keys = {a.split("=")[0] for a in args}
    own_data = any(k == "data" or k.startswith("data.") and k.endswith(("_path", "path", "root")) for k in keys)
    own_data |= any(a.startswith("experiment=") for a in args)
    extra = [] if own_data else [o for o in tiny_overrides(m.corpus) if o != "debug=tiny"]
    if script == "train.py":
        extra = ["debug=tiny", *extra]
        limits = {"trainer.limit_train_batches": 3, "trainer.limit_val_batches": 2, "trainer.limit_test_batches": 2,
                  "data.batch_size": 16}  # fmt: skip
        # A new run trains one epoch; a resumed one goes on from the checkpoint's 3 finished epochs to a 4th.
        limits["trainer.max_epochs"] = 4 if "ckpt_path" in keys else 1
    else:
        limits = {"trainer.limit_val_batches": 2, "trainer.limit_test_batches": 2}
    if "model.output=adaptive" in args:  # three clusters, each 4x narrower than the one before: 64 wide at least
        limits |= {"model.embed_size": 64, "model.hidden_size": 64}
    extra += [f"{k}={v}" for k, v in limits.items() if k not in keys]
    if "data.train_path" in keys and "data.val_path" not in keys and "data.sentence_split" not in keys:
        extra.append(f"data.val_path={m.corpus['val']}")  # eval's own-data command names train and test only
    return [*flags, *extra, *args]


def run_here(script: str, args: list[str], run_dir: Path) -> None:
    from rnnlm.generation.run import run
    from rnnlm.run.evaluate import evaluate
    from rnnlm.run.train import train

    config = script.removesuffix(".py")
    cfg = compose_config(*args, run_dir=run_dir, config=config)
    if any(a.startswith(NEEDS_GPU) for a in args) and not torch.cuda.is_available():
        from rnnlm.run.config_checks import check_config

        check_config(cfg)  # composes and passes its checks; it runs where there is a GPU
        return
    {"train": train, "eval": evaluate, "generate": run}[config](cfg)


FAST = [c for c in readme_commands() if c.split()[1] in ("train.py", "eval.py", "generate.py") and " -m " not in c]


@pytest.mark.parametrize("command", FAST)
def test_readme_command(command, materials, workdir, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("WANDB_MODE", "offline")  # no credentials here: the offline path (tests/test_wandb.py)
    script, args = localize(command, materials)
    run_here(script, args, tmp_path / "run")
    if script == "train.py" and not any(a.startswith(NEEDS_GPU) for a in args):
        assert (tmp_path / "run" / "results.json").is_file()


def test_the_readme_lists_the_commands_this_file_reads():
    commands = readme_commands()
    assert commands[0] == "python train.py model=gru"
    for expected in ("python train.py -m model=rnn,gru,lstm model.hidden_size=256,512",
                     'python generate.py ckpt_path=$CKPT prompt="the cast" strategy=greedy num_samples=1',
                     "python eval.py ckpt_path=outputs/train/runs/<date_time>/checkpoints/last.ckpt"):  # fmt: skip
        assert expected in commands


@pytest.mark.parametrize("block", range(len(python_blocks())))
def test_readme_python_block(block, materials):
    code = python_blocks()[block].replace("path/to/best.ckpt", str(materials.ckpt))
    code = code.replace("path/to/last.ckpt", str(materials.ckpt))
    exec(compile(code, f"README.md python block {block}", "exec"), {})


def quiet_lines(text: str) -> list[str]:
    """What a run should not print: library deprecations, Lightning's empty FLOPs count, its notes and tips."""
    noise = r"deprecat|Total FLOPs|FutureWarning|Trainer already configured|💡 Tip"
    return [line for line in text.splitlines() if re.search(noise, line, re.I)]


def test_python_train_py_as_a_user_runs_it(materials, tmp_path):
    """The README's main command as a real process: the summary, one line per epoch on the terminal and in
    train.log, and no library noise."""
    run_dir = tmp_path / "run"
    proc = run_train(*tiny_overrides(materials.corpus, run_dir), cwd=tmp_path)
    epochs = re.findall(r"\] - (epoch \d+) \| train/ppl", proc.stdout)
    assert epochs == ["epoch 0", "epoch 1"]
    assert re.findall(r"\] - (epoch \d+) \| train/ppl", (run_dir / "train.log").read_text()) == epochs
    assert re.fullmatch(r"best val/ppl 15\.9\d \| test/ppl 15\.3\d \| checkpoint \S+epoch001-ppl15\.9\d\.ckpt",
                        proc.stdout.strip().splitlines()[-1])  # fmt: skip
    assert quiet_lines(proc.stdout + proc.stderr) == []


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_as_a_real_process(command, materials, workdir, tmp_path):
    if "hydra/launcher=ray" in command and importlib.util.find_spec("ray") is None:
        pytest.skip('needs the ray extra: pip install -e ".[ray]"')
    if "hydra/launcher=slurm" in command:
        pytest.skip("needs a SLURM cluster (the request it composes: tests/test_launchers.py)")
    if any(g in command for g in NEEDS_GPU) and not torch.cuda.is_available():
        pytest.skip("needs CUDA GPUs (its config is checked in the fast tier)")
    sweep_dir = tmp_path / "sweep"
    if command.startswith("python -m rnnlm.report"):  # a sweep to report on first
        sweep = [*tiny_overrides(materials.corpus), "model=rnn,gru", "trainer.max_epochs=1"]
        run_train("-m", *sweep, f"hydra.sweep.dir={sweep_dir}", cwd=workdir)
    if "outputs/ngram/runs/<date_time>" in command:  # and the n-gram baseline it names (KN5 on PTB, seconds)
        ngram = [sys.executable, "-m", "rnnlm.ngram", f"hydra.run.dir={materials.path('ngram_run')}"]
        subprocess.run(ngram, cwd=workdir, capture_output=True, text=True, timeout=300, check=True)
    script, args = localize(command, materials, sweep_dir)
    if " -m " in f" {command} " and script == "train.py":
        args = [a for a in args if not a.startswith("hydra.run.dir")] + [f"hydra.sweep.dir={sweep_dir}"]
    else:
        args += [f"hydra.run.dir={tmp_path / 'run'}"] if script != "-m rnnlm.report" else []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, *script.split(), *args] if script.startswith("-m") else [sys.executable, script, *args]
    if not script.startswith("-m"):
        argv[1] = str(ROOT / script)
    proc = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
