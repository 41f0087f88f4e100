"""The published recipes as experiment files, their schedules, and stream mode with every tokenizer and a
WikiText-style file. (What the recipes reach on PTB: bench/stream.py, docs/STREAM.md.)"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from rnnlm.data import SentenceDataModule
from rnnlm.run.evaluate import evaluate
from rnnlm.training.schedulers import ConstantThenDecay
from tests.conftest import compose_config, make_sentences, tiny_overrides, train_here

# experiment -> (bptt, hidden, dropout, init_range, tied, lr, loss_average, schedule, epochs, clip)
RECIPES = {
    "ptb_stream_small": (35, 200, 0.2, None, False, 20.0, "tokens", ("plateau", 0.25), 40, 0.25),
    "ptb_stream_small_tied": (35, 200, 0.2, None, True, 20.0, "tokens", ("plateau", 0.25), 40, 0.25),
    "zaremba_small": (20, 200, 0.0, 0.1, False, 1.0, "sequences", (4, 0.5), 13, 5.0),
    "zaremba_medium": (35, 650, 0.5, 0.05, False, 1.0, "sequences", (6, 0.8), 39, 5.0),
    "zaremba_large": (35, 1500, 0.65, 0.04, False, 1.0, "sequences", (14, 1 / 1.15), 55, 10.0),
}


@pytest.mark.parametrize("name", RECIPES)
def test_each_recipe_composes_to_its_published_settings(name, tmp_path):
    bptt, hidden, dropout, init, tied, lr, average, schedule, epochs, clip = RECIPES[name]
    cfg = compose_config(f"experiment={name}", run_dir=tmp_path)
    assert (cfg.data.mode, cfg.data.bptt, cfg.data.batch_size) == ("stream", bptt, 20)
    assert cfg.data.eval_batch_size == 10 and cfg.model.cell == "lstm" and cfg.model.num_layers == 2
    assert (cfg.model.hidden_size, cfg.model.embed_size, cfg.model.dropout) == (hidden, hidden, dropout)
    assert (cfg.model.init_range, cfg.model.tie_weights) == (init, tied)
    assert cfg.optim._target_ == "torch.optim.SGD" and cfg.optim.lr == lr and cfg.optim.momentum == 0
    assert cfg.module.loss_average == average
    if schedule[0] == "plateau":
        assert cfg.scheduler._target_.endswith("ReduceLROnPlateau") and cfg.scheduler.factor == schedule[1]
        assert cfg.scheduler.patience == 0 and cfg.scheduler.threshold == 0
    else:
        assert (cfg.scheduler.keep_epochs, cfg.scheduler.decay) == pytest.approx(schedule)
    assert (cfg.trainer.max_epochs, cfg.trainer.gradient_clip_val) == (epochs, clip)
    assert cfg.callbacks.early_stopping is None  # a recipe trains all its epochs
    text = (Path(__file__).parent.parent / "conf" / "experiment" / f"{name}.yaml").read_text()
    assert "Published" in text  # the source and its number, in the file


# AWD-LSTM's README commands over main.py's defaults: (seed, batch, dropouti, dropouth, epochs)
AWD = {"awd_lstm_ptb": (141, 20, 0.4, 0.25, 500), "awd_lstm_wt2": (1882, 80, 0.65, 0.2, 750)}


@pytest.mark.parametrize("name", AWD)
def test_the_awd_recipes_compose_to_their_published_settings(name, tmp_path):
    seed, batch, dropouti, dropouth, epochs = AWD[name]
    cfg = compose_config(f"experiment={name}", run_dir=tmp_path)
    if name.endswith("wt2"):  # WikiText-2 as the published numbers read it: every line, blank ones as <eos>
        assert (cfg.data.source, cfg.data.size, cfg.data.raw, cfg.data.min_len) == ("wikitext", 2, False, 0)
    m, mod = cfg.model, cfg.module
    assert (cfg.seed, cfg.data.batch_size, cfg.data.eval_batch_size, cfg.data.bptt) == (seed, batch, 10, 70)
    assert cfg.data.mode == "stream" and cfg.data.variable_bptt
    assert (list(m.hidden_size), m.num_layers, m.embed_size, m.tie_weights, m.locked_dropout) == (
        [1150, 1150, 400], 3, 400, True, True)  # fmt: skip
    assert (m.dropout_input, m.dropout_hidden, m.dropout_output, m.dropout_embed, m.weight_drop) == (
        dropouti, dropouth, 0.4, 0.1, 0.5)  # fmt: skip
    assert (mod.ar, mod.tar, mod.loss_average, mod.averaging.kind, mod.averaging.nonmono) == (
        2.0, 1.0, "tokens", "nt_asgd", 5)  # fmt: skip
    assert (cfg.optim._target_, cfg.optim.lr, cfg.optim.weight_decay) == ("torch.optim.SGD", 30.0, 1.2e-6)
    assert cfg.get("scheduler") is None and cfg.trainer.gradient_clip_val == 0.25
    assert cfg.trainer.max_epochs == epochs and cfg.callbacks.early_stopping is None
    text = (Path(__file__).parent.parent / "conf" / "experiment" / f"{name}.yaml").read_text()
    assert "Published" in text


def test_the_fine_tuning_stage_and_the_cpu_recipe(tmp_path):
    cfg = compose_config("experiment=awd_lstm_ptb_finetune", "init_from=best.ckpt", run_dir=tmp_path)
    assert (cfg.init_from, cfg.module.averaging.start_epoch, cfg.module.averaging.stop) == ("best.ckpt", 0, True)
    cpu = compose_config("experiment=ptb_cpu_18min", run_dir=tmp_path)
    assert (cpu.trainer.precision, cpu.trainer.max_epochs, cpu.model.tie_weights) == ("bf16-mixed", 7, True)
    assert (cpu.scheduler.keep_epochs, cpu.module.averaging.kind, cpu.module.averaging.start_epoch) == (4, "swa", 5)


def test_the_transformers_cpu_recipe_is_the_lstm_recipes_budget_with_adam_and_a_warm_up(tmp_path):
    """ptb_transformer_cpu_18min keeps ptb_cpu_18min's data, size, precision, clipping and averaging of the last two
    epochs; only the cell and its optimiser change (the fair table in docs/CELLS.md trains both so)."""
    lstm = compose_config("experiment=ptb_cpu_18min", run_dir=tmp_path)
    cfg = compose_config("experiment=ptb_transformer_cpu_18min", run_dir=tmp_path)
    assert cfg.data == lstm.data and cfg.trainer == {**lstm.trainer, "max_epochs": 4}
    assert (cfg.model.cell, cfg.model.params, cfg.model.tie_weights, cfg.model.hidden_size) == (
        "transformer", 2653602, True, 800)  # fmt: skip
    assert (cfg.optim._target_, cfg.optim.lr, cfg.scheduler._target_, cfg.scheduler.warmup_steps) == (
        "torch.optim.Adam", 0.002, "rnnlm.training.schedulers.Warmup", 1062)  # fmt: skip
    assert (cfg.module.averaging.kind, cfg.module.averaging.start_epoch) == ("swa", 2)


def test_the_longer_cpu_recipes_use_every_awd_part_and_differ_only_in_batching(tmp_path):
    stream = compose_config("experiment=ptb_cpu_75min", run_dir=tmp_path)
    m, mod = stream.model, stream.module
    assert (m.embed_size, m.hidden_size, m.num_layers, m.tie_weights, m.locked_dropout) == (650, 650, 2, True, True)
    assert (m.dropout_input, m.dropout_hidden, m.dropout_output, m.dropout_embed, m.weight_drop) == (
        0.4, 0.25, 0.4, 0.1, 0.3)  # fmt: skip
    assert (mod.ar, mod.tar, stream.optim.weight_decay, mod.averaging.kind) == (2.0, 1.0, 1.2e-6, "swa")
    assert (stream.data.mode, stream.data.batch_size, stream.data.variable_bptt) == ("stream", 40, True)
    assert (stream.trainer.precision, stream.trainer.max_epochs, stream.scheduler.keep_epochs) == ("bf16-mixed", 18, 11)
    sentences = compose_config("experiment=ptb_cpu_75min_sentences", run_dir=tmp_path)
    assert (sentences.data.mode, sentences.data.batch_size, sentences.data.variable_bptt) == ("sentences", 64, False)
    assert sentences.model == stream.model and sentences.module == stream.module
    assert sentences.optim == stream.optim and sentences.scheduler == stream.scheduler


def test_constant_then_decay_holds_then_multiplies_each_epoch():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule, lrs = ConstantThenDecay(opt, keep_epochs=4, decay=0.5), []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.125]  # Zaremba small: epoch 5 (the fifth) at 0.5


def lr_per_epoch(run_dir: Path) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [float(r["lr-SGD"]) for r in csv.DictReader(f) if r.get("lr-SGD")]


def test_a_stream_run_follows_the_schedule_and_resumes_it(tiny_corpus, tmp_path):
    overrides = [*tiny_overrides(tiny_corpus), "data.mode=stream", "data.bptt=8", "data.batch_size=4",
                 "data.eval_batch_size=2", "optim=sgd", "optim.lr=1.0", "scheduler=constant_then_decay",
                 "scheduler.keep_epochs=1", "scheduler.decay=0.5", "callbacks.early_stopping=null"]  # fmt: skip
    train_here(*overrides, "trainer.max_epochs=3", run_dir=tmp_path / "a")
    assert lr_per_epoch(tmp_path / "a") == [1.0, 0.5, 0.25]
    train_here(*overrides, "trainer.max_epochs=4", f"ckpt_path={tmp_path / 'a' / 'checkpoints' / 'last.ckpt'}",
               run_dir=tmp_path / "b")  # fmt: skip
    assert lr_per_epoch(tmp_path / "b")[-1] == 0.125


def test_plateau_divides_by_four_when_validation_does_not_improve(tiny_corpus, tmp_path):
    """lr 200 makes the tiny model's validation worse at once: every epoch after the first quarters the lr."""
    train_here(*tiny_overrides(tiny_corpus), "data.mode=stream", "data.bptt=8", "data.batch_size=4",
               "data.eval_batch_size=2", "optim=sgd", "optim.lr=200", "scheduler=plateau",
               "callbacks.early_stopping=null", "trainer.max_epochs=3", "module.skip_nonfinite=true",
               run_dir=tmp_path)  # fmt: skip
    lrs = lr_per_epoch(tmp_path)
    assert lrs[0] == 200 and all(b in (a, a / 4) for a, b in zip(lrs, lrs[1:]))


def eval_of_best_checkpoint(run_dir: Path, *data: str) -> dict[str, float]:
    """eval.py on a finished stream run's best checkpoint (its own tokenizer), the test split as it was tested."""
    best = json.loads((run_dir / "results.json").read_text())["best_checkpoint"]
    return evaluate(compose_config(f"ckpt_path={best}", *data, "data.mode=stream", "data.bptt=8", "data.batch_size=4",
                                   "data.eval_batch_size=2", "splits=[test]", "trainer.accelerator=cpu",
                                   config="eval", run_dir=run_dir / "eval"))  # fmt: skip


@pytest.mark.parametrize("tokenizer", ["word", "char", "bpe"])
def test_stream_mode_with_every_tokenizer(tokenizer, tiny_corpus, tmp_path):
    extra = ["tokenizer.vocab_size=40"] if tokenizer == "bpe" else []
    got = train_here(*tiny_overrides(tiny_corpus), f"tokenizer={tokenizer}", *extra, "data.mode=stream",
                     "data.bptt=8", "data.batch_size=4", "data.eval_batch_size=2", "trainer.max_epochs=1",
                     run_dir=tmp_path)  # fmt: skip
    # The test stage's number is the checkpoint's: eval.py, its tokenizer read back from the checkpoint, agrees.
    data = ["data=text", *(f"data.{s}_path={tiny_corpus[s]}" for s in ("train", "val", "test"))]
    assert eval_of_best_checkpoint(tmp_path, *data)["test/ppl"] == pytest.approx(got["test/ppl"], rel=1e-5)


def test_a_wikitext_style_file_one_paragraph_per_line_is_one_stream(tmp_path):
    """WikiText's layout: headings and paragraphs one per line, blank lines between; each line + <eos>."""
    lines = []
    for i in range(30):
        lines += [f" = Section {i} = ", "", " ".join(make_sentences(4, i)) + " .", ""]
    for split in ("train", "valid", "test"):
        (tmp_path / f"wiki.{split}.tokens").write_text("\n".join(lines) + "\n")
    dm = SentenceDataModule(source="text", mode="stream", tokenizer={"kind": "word"}, batch_size=4, eval_batch_size=2,
                            bptt=8, cache_dir=None, **{f"{s}_path": str(tmp_path / f"wiki.{f}.tokens")
                                                       for s, f in (("train", "train"), ("val", "valid"),
                                                                    ("test", "test"))})  # fmt: skip
    dm.prepare()
    stream = dm.stream("train")
    words = sum(len(line.split()) for line in lines if line.strip())
    assert len(stream) == words + 60  # 30 headings + 30 paragraphs, each with its <eos>
    assert (stream == dm.ids["eos"]).sum() == 60
    got = train_here("debug=tiny", "data=text", *[f"data.{s}_path={tmp_path / f'wiki.{f}.tokens'}" for s, f in
                     (("train", "train"), ("val", "valid"), ("test", "test"))], "data.mode=stream", "data.bptt=8",
                     "data.batch_size=4", "data.eval_batch_size=2", "trainer.max_epochs=1",
                     run_dir=tmp_path / "run")  # fmt: skip
    data = ["data=text", *(f"data.{s}_path={tmp_path / f'wiki.{f}.tokens'}" for s, f in
                           (("train", "train"), ("val", "valid"), ("test", "test")))]  # fmt: skip
    assert eval_of_best_checkpoint(tmp_path / "run", *data)["test/ppl"] == pytest.approx(got["test/ppl"], rel=1e-5)


def test_the_qrnn_and_mogrifier_gpu_recipes_compose_to_their_sources_settings(tmp_path):
    from rnnlm.cli import plain
    from rnnlm.models.budget import count, fit_budget
    from rnnlm.run.config_checks import check_config

    q = compose_config("experiment=awd_qrnn_ptb", run_dir=tmp_path)  # AWD-LSTM's README command for the QRNN
    assert (q.model.cell, list(q.model.hidden_size), q.model.num_layers, q.model.embed_size, q.model.window) == (
        "qrnn", [1550, 1550, 1550, 400], 4, 400, 2)  # fmt: skip
    assert (q.model.weight_drop, q.model.dropout_hidden, q.model.dropout_input, q.model.tie_weights) == (
        0.1, 0.3, 0.4, True)  # fmt: skip
    assert (q.seed, q.trainer.max_epochs, q.trainer.gradient_clip_val, q.optim.lr, q.data.bptt) == (
        9001, 550, 0.2, 30.0, 70)  # fmt: skip
    m = compose_config("experiment=mogrifier_ptb", run_dir=tmp_path)  # deepmind/lamb's tuned PTB configuration
    assert (m.model.cell, m.model.rounds, m.model.rank, m.model.num_layers, m.model.tie_weights) == (
        "mogrifier", 5, 84, 2, True)  # fmt: skip
    assert (m.optim._target_, m.optim.lr, m.optim.alpha, m.optim.weight_decay) == (
        "torch.optim.RMSprop", 0.0023, 0.999, 2.5e-4)  # fmt: skip
    assert (m.data.batch_size, m.data.bptt, m.trainer.gradient_clip_val) == (64, 70, 10.0)
    for name, cfg in (("awd_qrnn_ptb", q), ("mogrifier_ptb", m)):
        check_config(cfg)
        assert "Published" in (Path(__file__).parent.parent / "conf" / "experiment" / f"{name}.yaml").read_text()
    sized = fit_budget(plain(m.model), 10_000)  # 24M over PTB's 10,000 words
    assert sized["hidden_size"] == sized["embed_size"] == 912
    assert abs(count(sized, 10_000, 912) - 24_000_000) <= 0.05 * 24_000_000
