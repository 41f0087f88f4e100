"""Bits per character: a character tokenizer's run logs val/bpc and test/bpc (the NLL per character in bits, every
<eos> counted as a character) beside perplexity, on its epoch line and summary, in metrics.csv, results.json, eval.py
and the sweep report; a word or BPE run logs none."""

from __future__ import annotations

import csv
import json
import math

import pytest

from rnnlm.data.tokenizer import build_tokenizer, kind_of
from rnnlm.sweeps.report import main
from tests.conftest import TINY_EVAL, eval_here, make_sentences, tiny_overrides, train_here
from tests.test_sweep import fake_job


@pytest.mark.parametrize("kind, extra", [("word", {}), ("char", {}), ("bpe", {"vocab_size": 40})])
def test_the_kind_is_read_back_from_the_tokenizer(kind, extra):
    assert kind_of(build_tokenizer(make_sentences(50, 0), kind, **extra)) == kind


def test_a_character_run_logs_bits_per_character_everywhere(tiny_corpus, tmp_path, capsys, caplog):
    run_dir = tmp_path / "run"
    metrics = train_here(*tiny_overrides(tiny_corpus), "tokenizer=char", "data.max_tokens=200", run_dir=run_dir)
    assert metrics["test/bpc"] == pytest.approx(metrics["test/loss"] / math.log(2), rel=1e-6)
    assert metrics["val/bpc"] == pytest.approx(math.log2(metrics["val/ppl"]), rel=1e-6)  # the best epoch's
    results = json.loads((run_dir / "results.json").read_text())
    assert results["metrics"]["test/bpc"] == pytest.approx(metrics["test/bpc"])
    history = results["history"]
    assert [h["val/bpc"] for h in history] == pytest.approx([math.log2(h["val/ppl"]) for h in history], rel=1e-6)
    with open(run_dir / "csv" / "metrics.csv") as f:
        logged = [row for row in csv.DictReader(f) if row.get("val/bpc")]
    assert [float(r["val/bpc"]) for r in logged] == pytest.approx([float(r["val/loss"]) / math.log(2) for r in logged])
    last = history[-1]
    assert f"epoch 1 | train/ppl {last['train/ppl']:.2f} | val/ppl {last['val/ppl']:.2f} | val/bpc " \
           f"{last['val/bpc']:.3f} |" in caplog.text  # fmt: skip
    assert f"test/bpc {metrics['test/bpc']:.3f} | checkpoint" in capsys.readouterr().out

    evaluated = eval_here(run_dir / "checkpoints" / "last.ckpt", tiny_corpus, tmp_path / "eval", *TINY_EVAL)
    assert evaluated["test/bpc"] == pytest.approx(evaluated["test/loss"] / math.log(2), rel=1e-6)


def test_a_word_run_logs_no_bits_per_character(tiny_corpus, tmp_path):
    metrics = train_here(*tiny_overrides(tiny_corpus), run_dir=tmp_path / "run")
    assert not [k for k in metrics if k.endswith("/bpc")]


def test_the_report_shows_bits_per_character_where_a_run_has_them(tmp_path):
    for name, metrics in (("0", {"val/ppl": 3.0, "test/ppl": 2.9, "val/bpc": 1.585, "test/bpc": 1.536}),
                          ("1", {"val/ppl": 120.0, "test/ppl": 110.0})):  # fmt: skip
        fake_job(
            tmp_path / name, [f"tokenizer={'char' if name == '0' else 'word'}"], {"cell": "lstm", "metrics": metrics}
        )
    assert main([str(tmp_path)]) == 0
    with open(tmp_path / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[5:9] == ["best val/ppl", "test/ppl", "best val/bpc", "test/bpc"]
    assert [(r["best val/bpc"], r["test/bpc"]) for r in rows] == [("1.585", "1.536"), ("", "")]
    assert "| 1.585 | 1.536 |" in (tmp_path / "report.md").read_text()
