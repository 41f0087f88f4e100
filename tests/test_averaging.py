"""Weight averaging (module.averaging): NT-ASGD equals AWD-LSTM's switch to torch's ASGD, its trigger is AWD's
rule, and once averaging has started the average is what validation, checkpoints, eval.py and a resume see.
Also init_from, the second (fine-tuning) stage."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnlm.errors import UserError
from rnnlm.generation import Generator, load_model
from rnnlm.lifecycle.interrupt import TrainingInterrupted
from rnnlm.models.cells.stack import RNNStack
from rnnlm.run.build import build
from rnnlm.run.evaluate import evaluate
from rnnlm.training.averaging import STATE_KEY, WeightAverage
from tests.conftest import compose_config, tiny_overrides, train_here
from tests.test_resume import signal_at

STREAM = ["data.mode=stream", "data.bptt=8", "data.batch_size=4", "data.eval_batch_size=2", "optim=sgd", "optim.lr=2"]
SWA = ["module.averaging.kind=swa", "module.averaging.start_epoch=1", "trainer.max_epochs=3", "model.weight_drop=0.3",
       "model.locked_dropout=true", "model.tie_weights=true"]  # fmt: skip


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_nt_asgd_is_sgd_with_the_average_torchs_asgd_keeps():
    """AWD-LSTM switches to torch.optim.ASGD(t0=0, lambd=0): its steps are SGD's and its `ax` the uniform
    average of the weights after each step. SGD + WeightAverage gives both exactly."""
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    asgd = torch.optim.ASGD(a.parameters(), lr=0.1, t0=0, lambd=0.0, weight_decay=1e-3)
    sgd = torch.optim.SGD(b.parameters(), lr=0.1, weight_decay=1e-3)
    average = WeightAverage("nt_asgd")
    average.start(b, epoch=0)
    for _ in range(7):
        x = torch.randn(5, 4)
        for net, opt in ((a, asgd), (b, sgd)):
            opt.zero_grad()
            net(x).pow(2).sum().backward()
            opt.step()
        average.update(b)
    for pa, pb, avg in zip(a.parameters(), b.parameters(), average.average):
        assert torch.allclose(pa, pb, atol=1e-7)
        assert torch.allclose(asgd.state[pa]["ax"], avg, atol=1e-7)


def test_nt_asgd_starts_when_validation_is_worse_than_the_best_before_the_last_nonmono_epochs():
    net = nn.Linear(2, 2)
    average = WeightAverage("nt_asgd", nonmono=2)
    losses = [5.0, 4.0, 3.0, 3.5, 3.2, 3.1]  # epoch 5: 3.1 > min(5, 4, 3) -> start (epoch 3, 4 were within nonmono)
    events = [average.after_validation(net, epoch, loss) for epoch, loss in enumerate(losses)]
    assert events == [None, None, None, None, None, "started"]
    assert average.started_epoch == 6 and average.active
    assert average.after_validation(net, 6, 9.0) is None  # averaging already: nothing more without stop
    improving = WeightAverage("nt_asgd", nonmono=2)
    assert not any(improving.after_validation(net, e, 10.0 - e) for e in range(10))
    # Fine-tuning (averaging from the start, stop=true) ends at the first such epoch, as AWD-LSTM's finetune.py.
    finetune = WeightAverage("nt_asgd", nonmono=2, start_epoch=0, stop=True)
    finetune.on_epoch_start(net, 0)
    assert [finetune.after_validation(net, e, loss) for e, loss in enumerate(losses)][-1] == "stop"


@pytest.fixture(scope="module")
def swa_run(tiny_corpus, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("swa") / "run"
    train_here(*tiny_overrides(tiny_corpus), *STREAM, *SWA, run_dir=run_dir)
    return run_dir


def test_checkpoints_hold_the_average_and_validation_scored_it(swa_run, tiny_corpus):
    last = torch.load(swa_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    saved = last[STATE_KEY]
    assert saved["active"] and saved["started_epoch"] == 1 and saved["count"] > 50  # epochs 1 and 2 averaged
    state = last["state_dict"]
    raw = saved["raw"]
    assert not torch.allclose(state["net.rnn.layers.0.weight_hh_l0"], raw[1])  # the average is not the raw weights
    assert state["net.decoder.weight"] is state["net.embedding.weight"]  # tied: one tensor in the file
    before = {"state_dict": {}}
    WeightAverage("swa", start_epoch=1).save(before, nn.Linear(2, 2))
    assert before[STATE_KEY]["raw"] is None and before["state_dict"] == {}  # nothing averaged yet: one copy
    # eval.py of the last checkpoint gives the last epoch's logged val/ppl: validation scored the average.
    data = [f"data.{s}_path={tiny_corpus[s]}" for s in ("train", "val", "test")]
    last_path = swa_run / "checkpoints" / "last.ckpt"
    evaluation = ["data=text", *data, "data.mode=stream", "data.eval_batch_size=2", f"ckpt_path={last_path}"]
    got = evaluate(compose_config(*evaluation, "splits=[val]", "trainer.accelerator=cpu", config="eval",
                                  run_dir=swa_run.parent / "e"))  # fmt: skip
    assert got["val/ppl"] == pytest.approx(results(swa_run)["history"][-1]["val/ppl"], rel=1e-5)
    # generate.py's loading reads the average too, into the per-layer stack, and writes from it.
    model = load_model(last_path, "cpu")
    assert isinstance(model.net.rnn, RNNStack) and model.net.decoder.weight is model.net.embedding.weight
    assert torch.equal(model.net.rnn.layers[0].weight_hh_l0, state["net.rnn.layers.0.weight_hh_l0"])
    assert any(r.text for r in Generator(model.net, model.tokenizer, model.data_mode).generate(["the", "a"], 5))


def test_an_averaged_run_resumes_mid_epoch_exactly(swa_run, tiny_corpus, tmp_path):
    overrides = [*tiny_overrides(tiny_corpus), *STREAM, *SWA]
    with pytest.raises(TrainingInterrupted) as stop:
        train_here(*overrides, *signal_at(85, signal.SIGTERM), run_dir=tmp_path / "a")
    ckpt = torch.load(stop.value.checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt[STATE_KEY]["active"] and 0 < ckpt[STATE_KEY]["count"] < 50  # mid-epoch
    train_here(*overrides, f"ckpt_path={stop.value.checkpoint}", run_dir=tmp_path / "b")
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert results(tmp_path / "b")["metrics"][key] == pytest.approx(results(swa_run)["metrics"][key], rel=1e-6)


def test_without_the_saved_average_the_resumed_run_would_differ(swa_run, tiny_corpus, tmp_path, monkeypatch):
    """The resume test above can fail: a resume that restarts the average changes the numbers."""
    overrides = [*tiny_overrides(tiny_corpus), *STREAM, *SWA]
    with pytest.raises(TrainingInterrupted) as stop:
        train_here(*overrides, *signal_at(85, signal.SIGTERM), run_dir=tmp_path / "a")
    original = WeightAverage.load
    monkeypatch.setattr(WeightAverage, "load", lambda self, ckpt, net, resuming: original(self, ckpt, net, False))
    train_here(*overrides, f"ckpt_path={stop.value.checkpoint}", run_dir=tmp_path / "b")
    straight = results(swa_run)["metrics"]["val/ppl"]
    assert results(tmp_path / "b")["metrics"]["val/ppl"] != pytest.approx(straight, rel=1e-6)


def test_init_from_starts_a_new_run_from_the_checkpoints_averaged_weights(swa_run, tiny_corpus, tmp_path):
    best = results(swa_run)["best_checkpoint"]
    finetune = [*SWA[3:], "module.averaging.kind=nt_asgd", "module.averaging.start_epoch=0", f"init_from={best}"]
    cfg = compose_config(*tiny_overrides(tiny_corpus), *STREAM, *finetune, run_dir=tmp_path / "ft")
    _, module, _ = build(cfg)
    saved = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    for name, value in module.net.state_dict().items():
        assert torch.equal(value, saved[f"net.{name}"]), name
    with pytest.raises(UserError, match="init_from and ckpt_path were both given"):
        build(compose_config(*tiny_overrides(tiny_corpus), *STREAM, *finetune, f"ckpt_path={best}",
                             run_dir=tmp_path / "both"))  # fmt: skip
    with pytest.raises(UserError, match=r"init_from=.* was trained with other settings .*model.hidden_size=24"):
        wider = ["model.hidden_size=24", "model.embed_size=24"]
        build(compose_config(*tiny_overrides(tiny_corpus), *STREAM, *finetune, *wider, run_dir=tmp_path / "other"))
