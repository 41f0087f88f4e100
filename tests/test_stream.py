"""Stream mode (data.mode=stream): one token stream per split, columns, truncated BPTT with the hidden state
carried; evaluation that scores every token once; variable windows; exact resume. Runs are in-process on the
tiny corpus; DDP (columns per rank, two real gloo processes): tests/test_stream_ddp.py.
"""

from __future__ import annotations

import json
import math
import re
import signal
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlm.data.corpus import EncodedSplit
from rnnlm.data.datamodule import SentenceDataModule
from rnnlm.data.stream import eval_columns, to_stream, train_columns
from rnnlm.data.windows import WindowSampler
from rnnlm.errors import UserError
from rnnlm.generation import Generator, load_model, score
from rnnlm.lifecycle.interrupt import TrainingInterrupted
from rnnlm.run.build import build
from rnnlm.training.lightning_module import LanguageModel
from tests.conftest import compose_config, tiny_overrides, train_here
from tests.test_resume import signal_at

STREAM = ["data.mode=stream", "data.bptt=8", "data.batch_size=4", "data.eval_batch_size=2"]


def stream_overrides(corpus, *extra: str) -> list[str]:
    return [*tiny_overrides(corpus), *STREAM, *extra]


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def datamodule(corpus, ckpt, **settings) -> SentenceDataModule:
    """The tiny corpus in stream mode, encoded with a checkpoint's tokenizer."""
    hp = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]
    dm = SentenceDataModule(
        source="text", train_path=str(corpus["train"]), val_path=str(corpus["val"]), test_path=str(corpus["test"]),
        tokenizer_json=hp["tokenizer_json"], mode="stream", cache_dir=None,
        **{"batch_size": 4, "eval_batch_size": 2, "bptt": 8, **settings},
    )  # fmt: skip
    dm.prepare()
    return dm


@pytest.fixture(scope="module")
def stream_run(tiny_corpus, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("stream") / "run"
    train_here(*stream_overrides(tiny_corpus), run_dir=run_dir)
    return run_dir


# -- the stream and its columns ----------------------------------------------------------------------------
def test_a_split_becomes_its_sentences_each_followed_by_eos():
    split = EncodedSplit.from_ids([[5, 6, 7], [8], [9, 10]])
    assert to_stream(split, eos=2).tolist() == [5, 6, 7, 2, 8, 2, 9, 10, 2]


def test_training_columns_are_views_of_the_stream_and_ranks_own_contiguous_columns():
    stream = np.arange(103, dtype=np.int32)
    one = train_columns(stream, batch_size=4, num_replicas=2, rank=0)
    two = train_columns(stream, batch_size=4, num_replicas=2, rank=1)
    assert one.inputs.shape == (4, 12)  # 102 pairs in 8 columns of 12 steps; 6 pairs dropped
    both = torch.cat([one.inputs, two.inputs])
    assert both.flatten().tolist() == list(range(96)) and torch.equal(torch.cat([one.targets, two.targets]), both + 1)
    base = torch.from_numpy(stream)
    assert one.inputs.data_ptr() == base.data_ptr() and two.inputs.data_ptr() == base.data_ptr() + 4 * 48


@pytest.mark.parametrize("length, columns, ranks", [(50, 1, 1), (50, 7, 1), (50, 6, 2), (11, 10, 1), (9, 4, 4)])
def test_evaluation_scores_every_token_after_the_first_exactly_once(length, columns, ranks):
    stream = np.arange(100, 100 + length, dtype=np.int32)
    parts = [eval_columns(stream, columns, -1, "val", ranks, r) for r in range(ranks)]
    index = np.concatenate([p.target_index[p.target_index >= 0] for p in parts])
    assert sorted(index.tolist()) == list(range(1, length))  # each position once, the first never
    for p in parts:
        real = p.target_index >= 0
        assert (p.targets.numpy()[real] == stream[p.target_index[real]]).all()
        assert (p.inputs.numpy()[real] == stream[p.target_index[real] - 1]).all()
        assert p.scored[-1] == real.sum() and len({p.steps for p in parts}) == 1


def test_one_evaluation_column_equals_a_plain_token_by_token_loop(stream_run, tiny_corpus):
    ckpt = stream_run / "checkpoints" / "last.ckpt"
    module = LanguageModel.load_from_checkpoint(ckpt, map_location="cpu")
    dm = datamodule(tiny_corpus, ckpt, eval_batch_size=1)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    logged = trainer.validate(module, datamodule=dm, verbose=False)[0]["val/ppl"]
    net, stream = module.net.eval(), torch.from_numpy(dm.stream("val")).long()
    total, hidden = 0.0, None
    with torch.no_grad():
        for i in range(len(stream) - 1):
            logits, hidden = net(stream[i].view(1, 1), hidden)
            total += F.cross_entropy(logits.view(1, -1), stream[i + 1].view(1), reduction="sum").item()
    assert logged == pytest.approx(math.exp(total / (len(stream) - 1)), rel=1e-5)


def test_scoring_the_test_split_with_carried_state_reproduces_test_ppl(stream_run, tiny_corpus, capsys):
    from rnnlm.generation.run import run

    logged = results(stream_run)["metrics"]["test/ppl"]
    best = results(stream_run)["best_checkpoint"]
    model = load_model(best, "cpu")
    lines = tiny_corpus["test"].read_text().splitlines()
    scores = score(model.net, model.tokenizer, lines, data_mode=model.data_mode, carry_state=True, columns=2)
    assert scores.corpus_ppl == pytest.approx(logged, rel=1e-5)
    assert scores.tokens.sum() == sum(len(s.split()) + 1 for s in lines) - 1  # all but the first token
    cfg = compose_config(f"ckpt_path={best}", f"score_path={tiny_corpus['test']}", "carry_state=true", "columns=2",
                         config="generate")  # fmt: skip
    run(cfg)
    assert f"corpus ppl {logged:.3f}" in capsys.readouterr().out


# -- training ------------------------------------------------------------------------------------------------
def test_a_stream_epoch_is_a_plain_truncated_bptt_loop(tiny_corpus, tmp_path):
    """Lightning's epoch equals the loop every paper's code writes: state carried and detached, the loss
    summed over steps and averaged over columns (Zaremba), clipping, SGD, uniform init."""
    cfg = compose_config(*stream_overrides(tiny_corpus), "optim=sgd", "optim.lr=1.0", "module.loss_average=sequences",
                         "model.dropout=0", "model.init_range=0.1", "trainer.gradient_clip_val=5",
                         "trainer.max_epochs=1", "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0",
                         "callbacks=none", "test=false", run_dir=tmp_path)  # fmt: skip
    dm, module, trainer = build(cfg)
    net = type(module.net)(vocab_size=module.net.decoder.out_features, **cfg.model)
    net.load_state_dict(module.net.state_dict())
    assert all(p.abs().max() <= 0.1 for p in net.parameters()) and net.decoder.bias.abs().max() > 0.05
    trainer.fit(module, datamodule=dm)

    dataset, windows = dm._stream("train")
    opt, hidden = torch.optim.SGD(net.parameters(), lr=1.0), None
    for start, end in windows.batches(0):
        b = dataset.__getitems__([start, end])
        logits, hidden = net(b.inputs, hidden)
        hidden = tuple(h.detach() for h in hidden)
        loss = F.cross_entropy(logits.flatten(0, 1), b.targets.flatten(), reduction="sum") / b.inputs.shape[0]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
    assert len(windows.batches(0)) == trainer.global_step > 40
    for (name, mine), theirs in zip(net.named_parameters(), module.net.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5, msg=name)


def test_variable_windows_follow_awd_lstm_and_are_a_function_of_seed_and_epoch():
    sampler = WindowSampler(steps=200_000, bptt=35, variable=True, seed=3)
    spans = sampler.batches(0)
    lengths = np.array([e - s for s, e in spans])
    assert spans[0][0] == 0 and spans[-1][1] == 200_000 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert lengths[:-1].min() >= 5
    # N(35, 5) w.p. 0.95, N(17.5, 5) otherwise, truncated to an integer: mean 0.95 * 35 + 0.05 * 17.5 - ~0.5
    assert lengths.mean() == pytest.approx(33.6, abs=0.3)
    assert (lengths < 24).mean() == pytest.approx(0.05, abs=0.01)
    assert sampler.batches(0) == spans and sampler.batches(1) != spans
    assert len(sampler) == len(spans) and len(WindowSampler(200_000, 35, True, 3, epoch=1)) == len(sampler.batches(1))


class RecordLr(L.Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[float, float]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        scale = pl_module._lr_scale
        self.seen.append((optimizer.param_groups[0]["lr"], scale))


def test_variable_windows_scale_each_steps_learning_rate_by_length_over_bptt(tiny_corpus, tmp_path):
    cfg = compose_config(*stream_overrides(tiny_corpus), "data.variable_bptt=true", "data.bptt=10", "optim=sgd",
                         "optim.lr=2.0", "trainer.max_epochs=1", run_dir=tmp_path)  # fmt: skip
    dm, module, trainer = build(cfg)
    recorder = RecordLr()
    trainer.callbacks.append(recorder)
    trainer.fit(module, datamodule=dm)
    _, windows = dm._stream("train")
    expected = [(end - start) / 10 for start, end in windows.batches(0)]
    assert [scale for _, scale in recorder.seen] == pytest.approx(expected)
    assert [lr for lr, _ in recorder.seen] == pytest.approx([2.0 * s for s in expected])
    assert len(set(expected)) > 3
    assert trainer.optimizers[0].param_groups[0]["lr"] == 2.0  # restored after every step


@pytest.fixture(scope="module")
def uninterrupted(tiny_corpus, tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    train_here(*stream_overrides(tiny_corpus, "data.variable_bptt=true", "trainer.max_epochs=3"), run_dir=run_dir)
    return results(run_dir)


def test_stream_mode_resumes_mid_epoch_exactly_with_the_carried_state(tiny_corpus, tmp_path, uninterrupted):
    overrides = stream_overrides(tiny_corpus, "data.variable_bptt=true", "trainer.max_epochs=3")
    with pytest.raises(TrainingInterrupted) as stop:
        train_here(*overrides, *signal_at(70, signal.SIGTERM), run_dir=tmp_path / "a")
    ckpt = torch.load(stop.value.checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 70  # mid-epoch (~55 windows an epoch)
    h, c = ckpt["rnnlm_stream_hidden"]
    assert h.shape == c.shape == (1, 2, 4, 16) and h.abs().sum() > 0  # (ranks, layers, columns, hidden)
    train_here(*overrides, f"ckpt_path={stop.value.checkpoint}", run_dir=tmp_path / "b")
    resumed = results(tmp_path / "b")
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert resumed["metrics"][key] == pytest.approx(uninterrupted["metrics"][key], rel=1e-6), key


def test_without_the_saved_state_the_resumed_run_would_differ(tiny_corpus, tmp_path, uninterrupted, monkeypatch):
    """The resume test above can fail: dropping the saved state changes the numbers."""
    overrides = stream_overrides(tiny_corpus, "data.variable_bptt=true", "trainer.max_epochs=3")
    with pytest.raises(TrainingInterrupted) as stop:
        train_here(*overrides, *signal_at(70, signal.SIGTERM), run_dir=tmp_path / "a")
    monkeypatch.setattr(LanguageModel, "on_load_checkpoint", lambda self, ckpt: None)
    train_here(*overrides, f"ckpt_path={stop.value.checkpoint}", run_dir=tmp_path / "b")
    assert results(tmp_path / "b")["metrics"]["val/ppl"] != pytest.approx(uninterrupted["metrics"]["val/ppl"], rel=1e-6)


# -- generation, eval.py and mistakes ----------------------------------------------------------------------
def test_a_stream_model_generates_from_eos_and_eval_py_reproduces_its_test_ppl(stream_run, tiny_corpus, caplog):
    from rnnlm.run.evaluate import evaluate

    best = results(stream_run)["best_checkpoint"]
    model = load_model(best, "cpu")
    generator = Generator(model.net, model.tokenizer, model.data_mode)
    assert generator.encode_prompt("the cat")[0] == model.ids["eos"]
    assert any(r.text for r in generator.generate(["the"], 5))
    data = [f"data.{s}_path={tiny_corpus[s]}" for s in ("train", "val", "test")]
    common = ["data=text", *data, f"ckpt_path={best}", "splits=[test]", "trainer.accelerator=cpu"]
    got = evaluate(compose_config(*common, "data.mode=stream", "data.eval_batch_size=2", config="eval",
                                  run_dir=stream_run.parent / "eval"))  # fmt: skip
    assert got["test/ppl"] == pytest.approx(results(stream_run)["metrics"]["test/ppl"], rel=1e-5)
    sentences = evaluate(compose_config(*common, config="eval", run_dir=stream_run.parent / "eval2"))
    assert "was trained with data.mode=stream and is evaluated here with data.mode=sentences" in caplog.text
    # Sentence-level: each test sentence alone, read after an <eos> as the model always read one; score() agrees.
    lines = tiny_corpus["test"].read_text().splitlines()
    scored = score(model.net, model.tokenizer, lines, data_mode="stream")
    assert sentences["test/ppl"] == pytest.approx(scored.corpus_ppl, rel=1e-5)


@pytest.mark.parametrize("extra, message", [
    (["data.bptt=100000"], "data.bptt=100000 is longer than the training columns"),
    (["data.eval_batch_size=100000"], "data.eval_batch_size=100000 columns is more than the val stream's"),
    (["data.batch_size=10000"], "too few for 10000 columns (data.batch_size=10000 x 1 processes)"),
    (["module.loss_average=batch"], "module.loss_average='batch' is not known: use tokens or sequences."),
    (["model.init_range=-0.1"], "model.init_range=-0.1 must be a number in (0.0, inf)."),
])  # fmt: skip
def test_a_stream_setting_that_does_not_fit_is_one_sentence_before_training(extra, message, tiny_corpus, tmp_path):
    with pytest.raises(UserError, match=re.escape(message)):
        train_here(*stream_overrides(tiny_corpus), *extra, run_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_resuming_a_stream_checkpoint_in_sentence_mode_says_so(stream_run, tiny_corpus, tmp_path):
    ckpt = stream_run / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match="was trained with data.mode=stream and this run asks for data.mode=sentences"):
        train_here(*tiny_overrides(tiny_corpus), f"ckpt_path={ckpt}", "trainer.max_epochs=4", run_dir=tmp_path)
