"""Checkpoints written by an older main (tests/legacy/README.md) still load, score, generate and resume.

The references were measured with the main that wrote them; a rearrangement of the code must not move them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnlm.generation import GenerationConfig, Generator, load_model, score
from tests.conftest import train_here

LEGACY = Path(__file__).parent / "legacy"
CORPUS = [f"data.{s}_path={LEGACY / 'corpus' / (s + '.txt')}" for s in ("train", "val", "test")]
DATA = ["debug=tiny", "data=text", *CORPUS, "logger=csv"]
STREAM = ["data.mode=stream", "data.bptt=5", "module.averaging.kind=ema", "model.locked_dropout=true",
          "model.tie_weights=true"]  # fmt: skip


def legacy_test_lines() -> list[str]:
    return [s for s in (LEGACY / "corpus" / "test.txt").read_text().splitlines() if s]


@pytest.mark.parametrize(
    ("name", "mode", "ppl", "prompt", "text", "logprob"),
    [
        ("sentences", "sentences", 18.181354420255907, "dog", "", -2.7799341678619385),
        ("stream_mid_epoch", "stream", 20.021974335038895, "a dog", "ran ran ran mat ran mat ran ran", None),
    ],
)
def test_an_old_checkpoint_loads_scores_and_generates_as_it_did(name, mode, ppl, prompt, text, logprob):
    model = load_model(LEGACY / f"{name}.ckpt")
    assert model.data_mode == mode
    assert score(model.net, model.tokenizer, legacy_test_lines(), data_mode=mode).corpus_ppl == pytest.approx(
        ppl, rel=1e-5
    )
    out = Generator(model.net, model.tokenizer, mode).generate(
        [prompt], 1, GenerationConfig(strategy="greedy", max_len=8)
    )
    assert out[0].text == text
    if logprob is not None:
        assert out[0].logprob == pytest.approx(logprob, rel=1e-5)


@pytest.mark.parametrize(
    ("name", "overrides", "results"),
    [
        ("sentences", ["trainer.max_epochs=2"], {"val/ppl": 15.934314727783203, "test/ppl": 15.337717056274414}),
        (
            "stream_mid_epoch",
            [*STREAM, "trainer.max_epochs=1"],
            {"val/ppl": 20.003612518310547, "test/ppl": 20.015806198120117},
        ),
    ],
)
def test_an_old_checkpoint_resumes_to_the_numbers_it_reached_before(name, overrides, results, tmp_path):
    """The stream checkpoint resumes mid-epoch, with its carried state and averaged weights."""
    got = train_here(*DATA, *overrides, f"ckpt_path={LEGACY / name}.ckpt", run_dir=tmp_path / "run")
    assert {k: got[k] for k in results} == pytest.approx(results, rel=1e-4)
