"""Every mistake a user can make on the command line, through the real entry points' code.

Each case: the exit code, the one sentence on stderr naming the bad key or file and the fix, no
traceback, and nothing half-written (no checkpoint, results, corpus cache entry, output file or temporary
file). The fast tier runs each case's composed config through the entry point's own `run_or_exit` here;
the slow tier runs the very same cases as real `train.py` / `generate.py` processes. Data mistakes in more
depth (in-process): tests/test_data_errors.py; operating-system faults: tests/test_os_faults.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from rnnlm.cli import run_or_exit
from tests.conftest import ROOT, compose_config, tiny_overrides

HYDRA = 1  # Hydra's own composition errors (unknown key or option) exit 1; rnnlm's exit 2

T, G, E = "train.py", "generate.py", "eval.py"
# fmt: off
CASES = [
    # -- config: caught before any data is read
    ("hidden-not-int", T, ["model.hidden_size=abc"], 2, "model.hidden_size='abc' must be a positive integer."),
    ("hidden-negative", T, ["model.hidden_size=-5"], 2, "model.hidden_size=-5 must be a positive integer."),
    ("dropout-range", T, ["model.dropout=1.5"], 2, "model.dropout=1.5 must be a number in [0.0, 1.0)."),
    ("unknown-model-key", T, ["+model.hiden_size=3"], 2, "model.hiden_size is not a setting of model: remove it"),
    ("unknown-key-no-plus", T, ["model.hiden_size=3"], HYDRA, "Could not override 'model.hiden_size'."),
    ("unknown-trainer-key", T, ["+trainer.epochs=3"], 2, "trainer.epochs is not a setting of trainer"),
    ("unknown-option", T, ["model=transformers"], HYDRA, "Could not find 'model/transformers'"),
    ("unknown-callback-key", T, ["+callbacks.early_stopping.patiance=3"], 2,
     "callbacks.early_stopping could not be built: EarlyStopping.__init__() got an unexpected keyword argument "
     "'patiance'; fix or remove that setting."),
    ("unknown-cell", T, ["model.cell=lstmm"], 2, "model.cell=lstmm is not a known cell: use one of"),
    ("batch-size-zero", T, ["data.batch_size=0"], 2, "data.batch_size=0 must be a positive integer or null."),
    ("min-len-zero", T, ["data.min_len=0"], 2,
     "data.min_len=0 keeps empty lines, which only data.mode=stream reads (as a lone <eos>, as WikiText's published "
     "numbers do): set data.mode=stream, or data.min_len=1 to drop them."),
    ("min-len-negative", T, ["data.min_len=-1"], 2, "data.min_len=-1 must be an integer >= 0."),
    ("fraction-range", T, ["data.val_fraction=1.5"], 2, "data.val_fraction=1.5 must be a number in [0.0, 1.0)."),
    ("lr-negative", T, ["optim.lr=-0.1"], 2, "optim.lr=-0.1 must be a number in (0.0, inf)."),
    ("tokenizer-kind", T, ["tokenizer.kind=wordpiece"], 2, "tokenizer.kind=wordpiece is not known"),
    ("tie-weights", T, ["model.tie_weights=true", "model.embed_size=12"], 2,
     "model.tie_weights=true needs the last layer's size (model.hidden_size) (16) to equal model.embed_size (12)"),
    ("tie-last-layer", T, ["model.tie_weights=true", "model.hidden_size=[16,8]"], 2,
     "model.tie_weights=true needs the last layer's size (model.hidden_size) (8) to equal model.embed_size (16)"),
    ("layer-sizes", T, ["model.hidden_size=[16,16,8]"], 2,
     "model.hidden_size=[16, 16, 8] gives 3 layer sizes but model.num_layers=2: set model.num_layers=3."),
    ("weight-drop-range", T, ["model.weight_drop=1"], 2, "model.weight_drop=1 must be a number in [0.0, 1.0)."),
    ("locked-rate-range", T, ["model.dropout_hidden=-0.2"], 2,
     "model.dropout_hidden=-0.2 must be a number in [0.0, 1.0)."),
    ("embed-dropout-range", T, ["model.dropout_embed=1.0"], 2,
     "model.dropout_embed=1.0 must be a number in [0.0, 1.0)."),
    ("ar-negative", T, ["module.ar=-1"], 2, "module.ar=-1 must be a number in [0.0, inf)."),
    ("nt-asgd-adam", T, ["module.averaging.kind=nt_asgd"], 2,
     "module.averaging.kind=nt_asgd averages SGD steps (AWD-LSTM's ASGD) and optim is torch.optim.Adam: use optim=sgd"),
    ("averaging-kind", T, ["module.averaging.kind=polyak"], 2, "module.averaging.kind='polyak' is not known"),
    ("swa-start", T, ["module.averaging.kind=swa"], 2,
     "module.averaging.kind=swa needs module.averaging.start_epoch (the epoch averaging begins)."),
    ("init-from-missing", T, ["init_from=/nonexistent/best.ckpt"], 2,
     "init_from=/nonexistent/best.ckpt is not a file: give the path of a .ckpt written by rnnlm."),
    ("ddp-timeout", T, ["trainer=ddp_cpu", "trainer.strategy.timeout_s=0"], 2,
     "trainer.strategy.timeout_s=0 must be a positive number of seconds."),
    ("grace-period", T, ["interrupt_grace_s=-1"], 2, "interrupt_grace_s=-1 must be a number in (0.0, inf)."),
    ("skip-nonfinite-type", T, ["module.skip_nonfinite=maybe"], 2,
     "module.skip_nonfinite='maybe' must be true or false."),
    ("loss-average", T, ["module.loss_average=mean"], 2,
     "module.loss_average='mean' is not known: use tokens or sequences."),
    ("init-range", T, ["model.init_range=0"], 2, "model.init_range=0 must be a number in (0.0, inf)."),
    ("data-mode", T, ["data.mode=streams"], 2, "data.mode='streams' is not a batching mode: use sentences or stream."),
    ("stream-bptt", T, ["data.mode=stream", "data.bptt=0"], 2, "data.bptt=0 must be a positive integer."),
    ("stream-max-tokens", T, ["data.mode=stream", "data.max_tokens=512"], 2,
     "data.max_tokens=512 sizes sentence batches, and data.mode=stream reads columns: set data.max_tokens=null "
     "and the columns with data.batch_size."),
    ("stream-bucket-width", T, ["data.mode=stream", "data.bucket_width=4"], 2,
     "data.bucket_width=4 groups sentences by length, which data.mode=stream does not do: remove it (or set 1)."),
    ("checkpoint-url", T, ["callbacks.model_checkpoint.dirpath=s3://bucket/ckpts"], 2,
     "callbacks.model_checkpoint.dirpath=s3://bucket/ckpts is a URL, and rnnlm reads and writes checkpoints on "
     "local (or mounted) disks only"),
    ("checkpoint-dir-under-a-file", T, ["callbacks.model_checkpoint.dirpath={empty}/ckpts"], 2,
     "callbacks.model_checkpoint.dirpath={empty}/ckpts cannot hold checkpoints: a file stands where a folder "
     "should be; give a folder this process can write to."),
    # -- data
    ("missing-file", T, ["data.train_path=/nonexistent/train.txt"], 2,
     "data.train_path=/nonexistent/train.txt does not exist"),
    ("empty-file", T, ["data.train_path={empty}"], 2, "data.train_path={empty} is empty"),
    ("length-limits", T, ["data.min_len=50"], 2, "the length limits removed every train sentence"),
    ("csv-column", T, ["data=csv", "data.path={csv}", "data.text_column=review"], 2,
     "data.path={csv} has no column 'review' (it has: title, body): set data.text_column to one of them."),
    # -- checkpoints
    ("ckpt-missing", T, ["ckpt_path=/nowhere/model.ckpt"], 2, "ckpt_path=/nowhere/model.ckpt is not a file"),
    ("ckpt-url", T, ["ckpt_path=s3://bucket/last.ckpt"], 2, "ckpt_path=s3://bucket/last.ckpt is a URL"),
    ("ckpt-truncated", T, ["ckpt_path={truncated}"], 2, "ckpt_path={truncated} could not be read as a checkpoint"),
    ("ckpt-foreign", T, ["ckpt_path={foreign}"], 2, "ckpt_path={foreign} was not written by rnnlm"),
    ("resume-other-model", T, ["ckpt_path={ckpt}", "model.hidden_size=32"], 2,
     "was trained with other settings than this run asks for: model.hidden_size=32 (checkpoint: 16)"),
    ("resume-other-tokenizer", T, ["ckpt_path={ckpt}", "tokenizer=char"], 2,
     "tokenizer.kind='char' (checkpoint: 'word')"),
    ("resume-other-mode", T, ["ckpt_path={ckpt}", "data.mode=stream"], 2,
     "ckpt_path={ckpt} was trained with data.mode=sentences and this run asks for data.mode=stream: resume with "
     "data.mode=sentences, or start a new run without ckpt_path"),
    ("resume-past-max-epochs", T, ["ckpt_path={ckpt}", "trainer.max_epochs=1"], 2,
     "ckpt_path={ckpt} has already finished 3 epochs and trainer.max_epochs=1 asks for no more: set "
     "trainer.max_epochs above 3 to train on from it (or evaluate it with eval.py)."),
    ("resume-at-max-epochs", T, ["ckpt_path={ckpt}", "trainer.max_epochs=3"], 2,
     "ckpt_path={ckpt} has already finished 3 epochs and trainer.max_epochs=3 asks for no more: set "
     "trainer.max_epochs above 3 to train on from it (or evaluate it with eval.py)."),
    ("max-epochs-0", T, ["trainer.max_epochs=0"], 2, "trainer.max_epochs=0 trains nothing: set it to 1 or more (to "
     "evaluate a checkpoint without training, run python eval.py ckpt_path=...)."),
    ("max-steps-0", T, ["+trainer.max_steps=0"], 2, "trainer.max_steps=0 trains nothing: set it to 1 or more"),
    ("eval-no-ckpt", E, [], 2, "ckpt_path is not set: add ckpt_path=... to the command (a checkpoint written by "
     "train.py, e.g. outputs/train/runs/<date_time>/checkpoints/last.ckpt)."),
    # -- generation
    ("gen-no-ckpt", G, [], 2, "ckpt_path is not set: add ckpt_path=... to the command (a checkpoint written by "
     "train.py, e.g. outputs/train/runs/<date_time>/checkpoints/last.ckpt)."),
    ("gen-ckpt-missing", G, ["ckpt_path=/nowhere/model.ckpt"], 2, "ckpt_path=/nowhere/model.ckpt is not a file"),
    ("gen-ckpt-foreign", G, ["ckpt_path={foreign}"], 2, "ckpt_path={foreign} was not written by rnnlm"),
    ("gen-top-p", G, ["ckpt_path={ckpt}", "top_p=0"], 2, "top_p=0 must be in (0, 1]"),
    ("gen-beam-size", G, ["ckpt_path={ckpt}", "strategy=beam", "beam_size=0"], 2, "beam_size=0 must be at least 1"),
    ("gen-temperature", G, ["ckpt_path={ckpt}", "temperature=0"], 2, "temperature=0 must be > 0 with strategy=sample"),
    ("gen-prompt-file", G, ["ckpt_path={ckpt}", "prompt_file=/nowhere/p.txt"], 2,
     "prompt_file=/nowhere/p.txt does not exist"),
    ("gen-output-unwritable", G, ["ckpt_path={ckpt}", "output={empty}/out.jsonl"], 2,
     "output={empty}/out.jsonl could not be written: a file stands where a folder should be; choose another path."),
]
# fmt: on
# Caught by the config check itself: the corpus is never read (no cache entry is even started).
BEFORE_DATA = {c[0] for c in CASES[: [c[0] for c in CASES].index("missing-file")]}
BEFORE_DATA |= {
    "resume-other-model",
    "resume-other-tokenizer",
    "resume-other-mode",
    "resume-past-max-epochs",
    "resume-at-max-epochs",
    "max-epochs-0",
    "max-steps-0",
    "eval-no-ckpt",
    "gen-no-ckpt",
    "ckpt-url",
}


@pytest.fixture(scope="module")
def files(trained, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    truncated = d / "truncated.ckpt"
    truncated.write_bytes((trained / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    foreign = d / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    empty = d / "empty.txt"
    empty.write_text("")
    table = d / "reviews.csv"
    table.write_text("title,body\nhello,a fine sentence\n")
    return {"ckpt": trained / "checkpoints" / "last.ckpt", "truncated": truncated, "foreign": foreign,
            "empty": empty, "csv": table}  # fmt: skip


def command(script: str, args: list[str], corpus: dict[str, Path], d: Path) -> list[str]:
    if script == E:
        return [*args, f"hydra.run.dir={d / 'run'}"]
    if script == G:
        return [*args, f"output={d / 'out.jsonl'}" if not any(a.startswith("output=") for a in args) else "",
                f"hydra.run.dir={d / 'run'}"]  # fmt: skip
    keys = {a.split("=")[0] for a in args}
    other_source = "data" in keys  # its own paths instead of the text files
    base = [o for o in tiny_overrides(corpus, d / "run")
            if o.split("=")[0] not in keys and not (other_source and o.startswith("data."))]  # fmt: skip
    return [*base, *args, f"data.cache_dir={d / 'cache'}"]


def assert_clean(case: str, code: int, message: str, err: str, out: str, d: Path) -> None:
    assert message in err, err[-3000:]
    assert "Traceback" not in err + out
    if code == 2:
        assert err.strip().splitlines()[-1].startswith("error: ")  # the last line is the sentence
    run_dir, cache = d / "run", d / "cache"
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "results.json").exists()
    assert not (d / "out.jsonl").exists()
    assert not cache.exists() or not list(cache.iterdir())  # no corpus cache entry, finished or not
    assert not [p for p in d.rglob("*") if ".tmp" in p.name]
    if case in BEFORE_DATA:
        assert not cache.exists() and "corpus read" not in out  # stopped before reading the corpus


def run_here(script: str, args: list[str], d: Path, capsys, caplog) -> tuple[int, str, str]:
    """The entry point's work in this process: compose as Hydra would, then its run_or_exit."""
    from rnnlm.generation.run import run
    from rnnlm.run.evaluate import evaluate
    from rnnlm.run.train import train

    args = [a for a in args if a]
    config, fn = {T: ("train", train), G: ("generate", run), E: ("eval", evaluate)}[script]
    try:
        cfg = compose_config(*args, run_dir=d / "run", config=config)
    except Exception as err:  # Hydra's own refusal, which the command line prints and exits 1 with
        return HYDRA, "", str(err)
    try:
        run_or_exit(fn, cfg)
        code = 0
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out + caplog.text, captured.err


@pytest.mark.parametrize("case, script, args, code, message", [pytest.param(*c, id=c[0]) for c in CASES])
def test_bad_input_is_one_sentence_and_leaves_nothing_behind(
    case, script, args, code, message, files, tiny_corpus, tmp_path, capsys, caplog
):
    caplog.set_level(logging.INFO)
    argv = command(script, [a.format(**files) for a in args], tiny_corpus, tmp_path)
    got, out, err = run_here(script, argv, tmp_path, capsys, caplog)
    assert got == code, err[-3000:]
    assert_clean(case, code, message.format(**files), err, out, tmp_path)


def run_process(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}  # what a user sees
    return subprocess.run([sys.executable, str(ROOT / script), *[a for a in args if a]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def processes(files, tiny_corpus, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every case as a real process, two at a time (each is a process start: mostly imports)."""
    jobs = {}
    for case, script, args, _, _ in CASES:
        d = tmp_path_factory.mktemp(case)
        jobs[case] = (script, command(script, [a.format(**files) for a in args], tiny_corpus, d), d)
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = {case: pool.submit(run_process, script, args, d) for case, (script, args, d) in jobs.items()}
        return {case: (procs[case].result(), jobs[case][2]) for case in jobs}


@pytest.mark.slow
@pytest.mark.parametrize("case, code, message", [pytest.param(c[0], c[3], c[4], id=c[0]) for c in CASES])
def test_bad_input_as_a_real_process(case, code, message, processes, files):
    proc, d = processes[case]
    assert proc.returncode == code, proc.stderr[-3000:]
    assert_clean(case, code, message.format(**files), proc.stderr, proc.stdout, d)
