"""bf16 only where the hardware runs it natively: on a CPU that would emulate it (AVX-512 without BF16) or lacks it
(AVX2), and on a GPU before Ampere, training, eval.py and generation run in fp32 with one warning; never stop
inside oneDNN (its bf16 LSTM kernel does not exist on AVX2). The CPU's flags are faked both ways."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from omegaconf import OmegaConf

import rnnlm.precision as precision
from rnnlm.generation import GenerationConfig, Generator, load_model
from tests.conftest import compose_config, tiny_overrides, train_here
from tests.test_train import MEASURED

CPUS = {  # (bf16 instructions, oneDNN's bf16 kernels run at all)
    "native": (True, True),  # an EPYC with AVX-512 BF16, a Xeon with AMX
    "emulated": (False, True),  # Skylake / Cascade Lake / Ice Lake: AVX-512 without BF16
    "none": (False, False),  # AVX2 only
}


def fake_cpu(monkeypatch, kind: str) -> None:
    native, runs = CPUS[kind]
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: native)
    monkeypatch.setattr(precision, "cpu_emulates_bf16", lambda: runs)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512" if runs else "AVX2")


@pytest.fixture
def no_bf16(monkeypatch):
    fake_cpu(monkeypatch, "emulated")


def settled(allow_emulated: bool = False, **trainer):
    cfg = OmegaConf.create({"trainer": {"accelerator": "cpu", **trainer}, "allow_emulated_bf16": allow_emulated})
    precision.settle_precision(cfg)
    return cfg.trainer.precision


@pytest.mark.parametrize("asked", ["bf16-mixed", "bf16-true"])
def test_bf16_on_a_cpu_that_would_emulate_it_becomes_fp32_with_one_sentence(monkeypatch, asked):
    fake_cpu(monkeypatch, "emulated")
    with pytest.warns(UserWarning) as said:
        assert settled(precision=asked) == "32-true"
    assert [str(w.message) for w in said] == [
        f"trainer.precision={asked} would be emulated on this CPU (AVX512 without AVX-512 BF16 or AMX: about 0.4x "
        "fp32's speed): running in fp32 instead (the same model, fp32 speed); set allow_emulated_bf16=true to run "
        "the emulation anyway."
    ]


def test_bf16_on_a_cpu_without_it_becomes_fp32_even_when_emulation_is_allowed(monkeypatch):
    fake_cpu(monkeypatch, "none")  # AVX2: oneDNN has no bf16 LSTM to emulate with
    with pytest.warns(UserWarning) as said:
        assert settled(allow_emulated=True, precision="bf16-mixed") == "32-true"
    assert [str(w.message) for w in said] == [
        "trainer.precision=bf16-mixed needs a CPU with bf16 instructions (AVX-512 BF16 or AMX) and this one has "
        "AVX2: running in fp32 instead (the same model, fp32 speed)."
    ]


@pytest.mark.parametrize("cpu, allow_emulated, trainer, kept", [
    ("native", False, {"precision": "bf16-mixed"}, "bf16-mixed"),  # the CPU has it
    ("emulated", True, {"precision": "bf16-mixed"}, "bf16-mixed"),  # the user asked for the emulation
    ("none", False, {"accelerator": "gpu", "precision": "bf16-mixed"}, "bf16-mixed"),  # a GPU config, no GPU here
    ("none", False, {"precision": "16-mixed"}, "16-mixed"),  # not bf16
    ("none", False, {"precision": "32-true"}, "32-true"),
])  # fmt: skip
def test_precision_is_left_alone_where_bf16_runs_or_is_not_asked_for(monkeypatch, recwarn, cpu, allow_emulated,
                                                                     trainer, kept):  # fmt: skip
    fake_cpu(monkeypatch, cpu)
    assert settled(allow_emulated, **trainer) == kept and not recwarn.list


@pytest.mark.parametrize("native, allow_emulated, kept", [(True, False, "bf16-mixed"), (False, True, "bf16-mixed"),
                                                          (False, False, "32-true")])  # fmt: skip
def test_a_gpu_before_ampere_trains_in_fp32(monkeypatch, native, allow_emulated, kept):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(precision, "cuda_has_bf16", lambda: native)
    monkeypatch.setattr(precision, "_cuda_name", lambda: "Tesla V100-SXM2-16GB, compute capability 7.0")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert settled(allow_emulated, accelerator="gpu", precision="bf16-mixed") == kept
    expected = [] if kept != "32-true" else [
        "trainer.precision=bf16-mixed would be emulated on this GPU (Tesla V100-SXM2-16GB, compute capability 7.0; "
        "native bf16 needs 8.0 or later): running in fp32 instead (16-mixed is this GPU's fast precision); set "
        "allow_emulated_bf16=true to run the emulation anyway."
    ]  # fmt: skip
    assert [str(w.message) for w in said] == expected


def test_the_real_cpu_is_read_from_its_flags():
    """The choice agrees with torch's own flag probes, not with oneDNN's "bf16 supported" (true on any AVX-512)."""
    flags = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert precision.cpu_has_bf16() == flags
    assert precision.bf16_usable("cpu") == flags


def test_a_bf16_run_on_a_cpu_without_it_trains_the_fp32_model(no_bf16, tiny_corpus, tmp_path):
    with pytest.warns(UserWarning, match="running in fp32 instead"):
        metrics = train_here(*tiny_overrides(tiny_corpus), "trainer.precision=bf16-mixed", run_dir=tmp_path / "run")
    assert (metrics["val/ppl"], metrics["test/ppl"]) == pytest.approx(MEASURED["lstm"], rel=0.01)


def test_eval_py_with_bf16_on_a_cpu_without_it_evaluates_in_fp32(no_bf16, trained, tiny_corpus, tmp_path):
    from rnnlm.run.evaluate import evaluate

    ckpt = trained / "checkpoints" / "last.ckpt"
    overrides = [o for o in tiny_overrides(tiny_corpus) if o != "debug=tiny"]
    fp32 = evaluate(compose_config(f"ckpt_path={ckpt}", *overrides, run_dir=tmp_path / "a", config="eval"))
    cfg = compose_config(f"ckpt_path={ckpt}", *overrides, "trainer.precision=bf16-mixed", run_dir=tmp_path / "b",
                         config="eval")  # fmt: skip
    with pytest.warns(UserWarning, match="would be emulated on this CPU"):
        asked = evaluate(cfg)
    assert asked == fp32  # the same fp32 numbers to every digit


def test_bf16_generation_on_a_cpu_without_it_samples_as_fp32(no_bf16, trained, caplog):
    model = load_model(trained / "checkpoints" / "last.ckpt", "cpu")
    gen = Generator(model.net, model.tokenizer)
    fp32 = gen.generate(["the", "a dog"], 3, GenerationConfig("sample", seed=0))
    with caplog.at_level(logging.WARNING):
        asked = gen.generate(["the", "a dog"], 3, GenerationConfig("sample", seed=0, bf16=True))
    assert "bf16=true would be emulated on this CPU" in caplog.text
    assert [(r.text, r.logprob, r.settings) for r in asked] == [(r.text, r.logprob, r.settings) for r in fp32]
