"""The GPU paths, where a CUDA GPU is visible (marker `gpu`; skipped elsewhere, said so): training on the GPU in
fp32 and bf16-mixed reaches the CPU's perplexity, and generation and scoring on the GPU equal the CPU's.
bash scripts/gpu_check.sh runs these first on a lent GPU machine."""

from __future__ import annotations

import copy

import pytest
import torch

from rnnlm.generation import GenerationConfig, Generator, load_model
from rnnlm.generation.scoring import score
from tests.conftest import tiny_overrides, train_here
from tests.test_train import MEASURED

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")]


@pytest.fixture(autouse=True)
def no_tf32():
    """fp32 on the GPU as fp32 on the CPU: TF32 products would round to 10 bits."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_a_cell_trains_on_the_gpu_to_the_cpus_perplexity(cell, tiny_corpus, tmp_path):
    metrics = train_here(*tiny_overrides(tiny_corpus), f"model={cell}", "trainer.accelerator=gpu", "trainer.devices=1",
                         run_dir=tmp_path / "run")  # fmt: skip
    # cuDNN's kernels sum in another order than the CPU's: the same model to a fraction of a percent
    assert (metrics["val/ppl"], metrics["test/ppl"]) == pytest.approx(MEASURED[cell], rel=0.01)


@pytest.mark.skipif(torch.cuda.is_available() and not torch.cuda.is_bf16_supported(including_emulation=False),
                    reason="this GPU emulates bf16 (before Ampere): bf16-mixed runs in fp32 there")  # fmt: skip
def test_bf16_mixed_on_the_gpu_trains_to_the_fp32_perplexity(tiny_corpus, tmp_path):
    metrics = train_here(*tiny_overrides(tiny_corpus), "trainer.accelerator=gpu", "trainer.devices=1",
                         "trainer.precision=bf16-mixed", run_dir=tmp_path / "run")  # fmt: skip
    assert metrics["val/ppl"] == pytest.approx(MEASURED["lstm"][0], rel=0.03)  # bf16 rounding, not a new model


def test_generation_and_scoring_on_the_gpu_equal_the_cpus(trained):
    cpu = load_model(trained / "checkpoints" / "last.ckpt", "cpu")
    gpu = copy.deepcopy(cpu.net).to("cuda")
    prompts, sentences = ["the", "a dog"], ["the cat sat on the mat", "a dog ran under the log", "the big red cat"]
    for strategy, n in (("greedy", 1), ("beam", 3)):
        cfg = GenerationConfig(strategy, max_len=12, beam_size=4)
        want = Generator(cpu.net, cpu.tokenizer).generate(prompts, n, cfg)
        got = Generator(gpu, cpu.tokenizer).generate(prompts, n, cfg)
        assert [g.text for g in got] == [w.text for w in want]
        assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-4)
    want, got = score(cpu.net, cpu.tokenizer, sentences), score(gpu, cpu.tokenizer, sentences)
    assert got.logprob.tolist() == pytest.approx(want.logprob.tolist(), abs=1e-4)
