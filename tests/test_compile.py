"""module.compile=true: the same numbers as eager, and one warning instead of a failure without a compiler."""

from __future__ import annotations

import json
import logging

import pytest

from rnnlm.training import compiled
from rnnlm.training.objective import score_window
from tests.conftest import tiny_overrides, train_here

STREAM = ["data.mode=stream", "data.bptt=8", "data.batch_size=4", "data.eval_batch_size=2", "trainer.max_epochs=1",
          "model.locked_dropout=true", "model.weight_drop=0.3", "module.ar=2", "module.tar=1"]  # fmt: skip


def test_without_a_cpp_compiler_the_run_goes_on_uncompiled_with_one_warning(monkeypatch, caplog):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compiled.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING, logger="rnnlm"):
        assert compiled.maybe_compile(score_window, True, "cpu") is score_window
    assert caplog.messages == [
        "module.compile=true needs a C++ compiler for torch.compile's CPU kernels (g++ or clang++ on PATH, or $CXX) "
        "and none was found: training uncompiled; install one (e.g. apt-get install g++) to compile."
    ]
    assert compiled.maybe_compile(score_window, False, "cpu") is score_window


def test_cxx_names_the_compiler(monkeypatch):
    monkeypatch.setenv("CXX", "my-c++")
    monkeypatch.setattr(compiled.shutil, "which", lambda name: f"/usr/bin/{name}" if name == "my-c++" else None)
    assert compiled.cpp_compiler() == "my-c++"


@pytest.mark.slow
def test_a_compiled_run_gives_the_eager_runs_numbers(tiny_corpus, tmp_path):
    """Minutes of compiling on CPU: the slow tier."""
    if compiled.cpp_compiler() is None:
        pytest.skip("no C++ compiler here")
    for name, flag in (("eager", "false"), ("compiled", "true")):
        train_here(*tiny_overrides(tiny_corpus), *STREAM, f"module.compile={flag}", run_dir=tmp_path / name)
    eager, done = (json.loads((tmp_path / n / "results.json").read_text())["metrics"] for n in ("eager", "compiled"))
    for key in ("train/ppl", "val/ppl", "test/ppl"):
        assert done[key] == pytest.approx(eager[key], rel=1e-3), key
