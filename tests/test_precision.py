"""bf16 on a CPU without bf16 instructions: training and generation run in fp32 with one warning, never stop
inside oneDNN (its bf16 LSTM kernel does not exist there)."""

from __future__ import annotations

import logging

import pytest
from omegaconf import OmegaConf

import rnnlm.precision as precision
from rnnlm.generation import GenerationConfig, Generator, load_model
from tests.conftest import tiny_overrides, train_here
from tests.test_train import MEASURED


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)


def trainer_cfg(**trainer):
    return OmegaConf.create({"trainer": {"accelerator": "cpu", **trainer}})


@pytest.mark.parametrize("asked", ["bf16-mixed", "bf16-true"])
def test_bf16_on_a_cpu_without_it_becomes_fp32_with_one_sentence(no_bf16, asked):
    cfg = trainer_cfg(precision=asked)
    with pytest.warns(UserWarning, match=rf"^trainer\.precision={asked} needs a CPU with bf16 instructions .*: "
                                         r"running in fp32 instead \(the same model, fp32 speed\)\.$"):  # fmt: skip
        precision.settle_precision(cfg)
    assert cfg.trainer.precision == "32-true"


@pytest.mark.parametrize("has_bf16, trainer, kept", [
    (True, {"accelerator": "cpu", "precision": "bf16-mixed"}, "bf16-mixed"),  # the CPU has it
    (False, {"accelerator": "gpu", "precision": "bf16-mixed"}, "bf16-mixed"),  # not a CPU run
    (False, {"accelerator": "cpu", "precision": "16-mixed"}, "16-mixed"),  # not bf16
])  # fmt: skip
def test_precision_is_left_alone_where_bf16_runs_or_is_not_asked_for(monkeypatch, recwarn, has_bf16, trainer, kept):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: has_bf16)
    cfg = trainer_cfg(**trainer)
    precision.settle_precision(cfg)
    assert cfg.trainer.precision == kept and not recwarn.list


def test_a_bf16_run_on_a_cpu_without_it_trains_the_fp32_model(no_bf16, tiny_corpus, tmp_path):
    with pytest.warns(UserWarning, match="running in fp32 instead"):
        metrics = train_here(*tiny_overrides(tiny_corpus), "trainer.precision=bf16-mixed", run_dir=tmp_path / "run")
    assert (metrics["val/ppl"], metrics["test/ppl"]) == pytest.approx(MEASURED["lstm"], rel=0.01)


def test_bf16_generation_on_a_cpu_without_it_samples_as_fp32(no_bf16, trained, caplog):
    model = load_model(trained / "checkpoints" / "last.ckpt", "cpu")
    gen = Generator(model.net, model.tokenizer)
    fp32 = gen.generate(["the", "a dog"], 3, GenerationConfig("sample", seed=0))
    with caplog.at_level(logging.WARNING):
        asked = gen.generate(["the", "a dog"], 3, GenerationConfig("sample", seed=0, bf16=True))
    assert "bf16=true needs a CPU with bf16 instructions" in caplog.text
    assert [(r.text, r.logprob, r.settings) for r in asked] == [(r.text, r.logprob, r.settings) for r in fp32]
