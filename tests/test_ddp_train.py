"""trainer=ddp_cpu through train.py: two gloo processes started the way trainer=ddp starts them on GPUs."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter

import lightning as L
import pytest
import torch

from rnnlm.data.datamodule import SentenceDataModule
from rnnlm.training.lightning_module import LanguageModel
from tests.conftest import run_train, tiny_overrides

# A hang (the default progress bar's collective, issue 13) must fail the test, not stall the suite.
HANG = 120


@pytest.fixture(scope="module")
def ddp_run(tiny_corpus, tmp_path_factory):
    """`python train.py trainer=ddp_cpu` as a user runs it: progress bar, callbacks, logger and test stage all
    the defaults (the tiny data and model aside)."""
    tmp = tmp_path_factory.mktemp("ddp")
    run_dir, seen = tmp / "run", tmp / "seen"
    proc = run_train(
        *tiny_overrides(tiny_corpus, run_dir), "trainer=ddp_cpu", "data.batch_size=8",
        "+callbacks.record._target_=tests.apps.record_batches.RecordBatches", f"+callbacks.record.out={seen}",
        cwd=tmp, timeout=HANG,
    )  # fmt: skip
    return run_dir, seen, proc


def epoch_lines(text: str) -> list[str]:
    return re.findall(r"\] - (epoch \d+ \| train/ppl .*)", text)


def train_split(tiny_corpus, ckpt):
    module = LanguageModel.load_from_checkpoint(ckpt, map_location="cpu")
    dm = SentenceDataModule(
        source="text", train_path=str(tiny_corpus["train"]), val_path=str(tiny_corpus["val"]),
        test_path=str(tiny_corpus["test"]), tokenizer_json=module.hparams.tokenizer_json, batch_size=8,
        eval_batch_size=16, cache_dir=None,
    )  # fmt: skip
    dm.prepare()
    return module, dm


def test_each_rank_trains_on_its_own_half_and_together_on_every_sentence_once(ddp_run, tiny_corpus):
    run_dir, seen, _ = ddp_run
    _, dm = train_split(tiny_corpus, run_dir / "checkpoints" / "last.ckpt")
    split = dm.splits["train"]
    every = Counter(tuple(int(t) for t in split.tokens[o : o + n]) for o, n in zip(split.offsets, split.lengths))
    for epoch in (0, 1):
        ranks = [json.loads((seen / f"rank{r}_epoch{epoch}.json").read_text()) for r in (0, 1)]
        assert len(ranks[0]) > 0 and len(ranks[1]) > 0
        assert Counter(tuple(s) for s in ranks[0] + ranks[1]) == every  # the union, each sentence exactly once


def test_ddp_validation_perplexity_equals_a_single_process_evaluation(ddp_run, tiny_corpus):
    run_dir, _, proc = ddp_run
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = [float(r["val/ppl"]) for r in rows if r.get("val/ppl")]
    assert len(logged) == 2  # rank 0 alone writes the CSV, once per epoch
    module, dm = train_split(tiny_corpus, run_dir / "checkpoints" / "last.ckpt")
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    single = trainer.validate(module, datamodule=dm, verbose=False)[0]["val/ppl"]
    assert single == pytest.approx(logged[-1], rel=1e-5)
    # The test stage ran on both ranks too, and sums its split the same way.
    results = json.loads((run_dir / "results.json").read_text())
    best, _ = train_split(tiny_corpus, results["best_checkpoint"])
    assert trainer.test(best, datamodule=dm, verbose=False)[0]["test/ppl"] == pytest.approx(
        results["metrics"]["test/ppl"], rel=1e-5
    )
    assert proc.stdout.count("best val/ppl") == 1  # one summary line, from rank 0


def test_ddp_prints_one_line_per_epoch_on_the_terminal_and_in_train_log(ddp_run):
    run_dir, _, proc = ddp_run
    history = json.loads((run_dir / "results.json").read_text())["history"]
    expected = [f"epoch {h['epoch']} | train/ppl {h['train/ppl']:.2f} | val/ppl {h['val/ppl']:.2f}" for h in history]
    assert len(expected) == 2
    for text in (proc.stdout, (run_dir / "train.log").read_text()):
        assert [line.rsplit(" | ", 1)[0] for line in epoch_lines(text)] == expected


@pytest.mark.slow
def test_the_command_of_the_hang_with_a_tqdm_bar_and_early_stopping_finishes(tiny_corpus, tmp_path):
    """The command of the hang report, with the other progress bar (users without `rich` get tqdm) and an
    early stop after the first validation (a collective decision of its own)."""
    run_dir = tmp_path / "run"
    proc = run_train(
        *tiny_overrides(tiny_corpus, run_dir), "trainer=ddp_cpu", "trainer.max_epochs=3",
        "trainer.limit_train_batches=5", "trainer.limit_val_batches=2",
        "+callbacks.progress._target_=lightning.pytorch.callbacks.TQDMProgressBar",
        "+callbacks.early_stopping.stopping_threshold=1000000",
        cwd=tmp_path, timeout=HANG,
    )  # fmt: skip
    results = json.loads((run_dir / "results.json").read_text())
    assert results["epochs"] == 1 and len(epoch_lines(proc.stdout)) == 1  # stopped early, then tested
    assert "Epoch 0: 100%|" in proc.stdout  # tqdm's bar, not rich's
    module, dm = train_split(tiny_corpus, results["best_checkpoint"])
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    single = trainer.test(module, datamodule=dm, verbose=False)[0]["test/ppl"]
    assert results["metrics"]["test/ppl"] == pytest.approx(single, rel=1e-5)


@pytest.mark.slow
def test_ddp_inside_a_multirun_fails_at_once_with_the_fix(tiny_corpus, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_corpus, tmp_path) if not o.startswith("hydra.run.dir")]
    proc = run_train(
        "-m", *overrides, "trainer=ddp_cpu", "model.hidden_size=8,16", f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "trainer.strategy=ddp cannot run inside a Hydra multirun" in proc.stderr
    assert "ddp_spawn" in proc.stderr


@pytest.mark.slow
def test_ddp_spawn_is_the_way_to_run_ddp_in_a_sweep(tiny_corpus, tmp_path):
    overrides = [o for o in tiny_overrides(tiny_corpus, tmp_path) if not o.startswith("hydra.run.dir")]
    sweep_dir = tmp_path / "sweep"
    proc = run_train(
        "-m", *overrides, "trainer=ddp_cpu", "trainer.strategy=ddp_spawn", "model.hidden_size=8",
        f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path, timeout=HANG,
    )  # fmt: skip
    results = json.loads((sweep_dir / "0" / "results.json").read_text())
    assert results["epochs"] == 2  # fit and test both ran, 2 processes each; the test split summed over both ranks:
    module, dm = train_split(tiny_corpus, results["best_checkpoint"])
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    single = trainer.test(module, datamodule=dm, verbose=False)[0]["test/ppl"]
    assert results["metrics"]["test/ppl"] == pytest.approx(single, rel=1e-5)
    with open(sweep_dir / "0" / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert sum(1 for r in rows if r.get("val/ppl")) == 2
    assert [float(r["test/ppl"]) for r in rows if r.get("test/ppl")] == pytest.approx([single], rel=1e-5)
    # The spawned rank 0 logs its epoch lines like a single process: on the terminal and in the job's log.
    for text in (proc.stdout, (sweep_dir / "0" / "train.log").read_text()):
        assert [line.split(" | ")[0] for line in epoch_lines(text)] == ["epoch 0", "epoch 1"]


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_every_rank_at_the_same_step_with_a_checkpoint(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_train(
        *tiny_overrides(tiny_corpus, run_dir), "trainer=ddp_cpu", "trainer.max_epochs=3",
        "+callbacks.stop._target_=tests.apps.interrupt.SignalAt", "+callbacks.stop.step=6", "+callbacks.stop.rank=1",
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert "stopped by SIGTERM at epoch 0, step 6" in proc.stderr  # printed by rank 0, which got no signal
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 6


@pytest.mark.slow
def test_a_signal_to_a_ddp_spawn_rank_is_reported_by_the_main_process(tiny_corpus, tmp_path):
    """ddp_spawn's ranks are spawned processes: their stop reaches the main process only as an exit code,
    which it turns back into the usual report, from the checkpoint the ranks saved."""
    run_dir = tmp_path / "run"
    proc = run_train(
        *tiny_overrides(tiny_corpus, run_dir), "trainer=ddp_cpu", "trainer.strategy=ddp_spawn",
        "+callbacks.stop._target_=tests.apps.interrupt.SignalAt", "+callbacks.stop.step=6", "+callbacks.stop.rank=0",
        cwd=tmp_path, check=False, timeout=HANG,
    )  # fmt: skip
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert f"stopped by SIGTERM at epoch 0, step 6; saved {run_dir / 'checkpoints' / 'last.ckpt'}" in proc.stderr
    assert "Traceback" not in proc.stderr
