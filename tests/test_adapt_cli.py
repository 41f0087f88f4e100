"""eval.py and generate.py with adapt=dynamic, cache or both, as users run them, on tiny checkpoints.

eval.py tunes on val (at most 10 points each), scores test once, writes both to results.json with the static
score of the same reading, which equals plain eval.py's at one column; the rms statistics are saved beside the
checkpoint and reused; the checkpoint file is never rewritten; DDP is refused before anything is read. generate.py
scores a user's lines with the same machinery, per line and for the corpus. The comparisons of whole eval.py runs
with each other are in the slow tier.
"""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.generation.run import run as generate_run
from rnnlm.run.evaluate import evaluate
from tests.conftest import compose_config, eval_here, tiny_overrides, train_here

TINY = ("trainer.accelerator=cpu", "adapt.val_tokens=120", "++adapt.stats_tokens=400", "++adapt.stats_batch_size=8")


@pytest.fixture(scope="module")
def stream_ckpt(tiny_corpus, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("adapt") / "stream"
    train_here(*tiny_overrides(tiny_corpus), "data.mode=stream", "data.bptt=6", run_dir=run_dir)
    return run_dir / "checkpoints" / "last.ckpt"


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("method", ("dynamic", "cache", "both"))
def test_eval_tunes_on_val_and_scores_test(method, stream_ckpt, tiny_corpus, tmp_path, capsys):
    before = digest(stream_ckpt)
    metrics = eval_here(stream_ckpt, tiny_corpus, tmp_path, f"adapt={method}", "data.mode=stream", *TINY)
    results = json.loads((tmp_path / "results.json").read_text())
    record = results["adapt"]
    assert record["level"] == "stream-level" and record["methods"] == {"both": ["dynamic", "cache"]}.get(
        method, [method])  # fmt: skip
    points = [p["val/ppl"] for p in record["search"]]
    assert len(points) <= (19 if method == "both" else 10)  # both: 9 dynamic points, then 8 mixtures of the best pass
    assert metrics["val/ppl"] == pytest.approx(min(points)) and record["splits"]["val"]["tokens"] == 120
    alone = {"test/ppl_dynamic", "test/ppl_cache"} if method == "both" else set()
    assert set(metrics) == {"val/ppl", "val/ppl_static", "test/ppl", "test/ppl_static", *alone}
    assert record["splits"]["test"]["tokens_per_sec"] > 0 and results["metrics"] == metrics
    printed = capsys.readouterr().out
    said = f"test/ppl {metrics['test/ppl']:.2f} adapted, {metrics['test/ppl_static']:.2f} static"
    assert said in printed and "(stream-level, batch size 1, " in printed
    assert digest(stream_ckpt) == before  # the adapted weights never reach the checkpoint


@pytest.mark.slow
def test_both_reports_each_method_alone(stream_ckpt, tiny_corpus, tmp_path):
    """adapt=both's dynamic-alone and cache-alone numbers, from its two readings, are those of adapt=dynamic and
    adapt=cache run with the same settings."""
    dynamic, cache = ("adapt.lr=0.001", "adapt.decay=0.001"), ("adapt.theta=0.7", "adapt.lam=0.2", "adapt.window=50")
    common = ("adapt.search=false", "data.mode=stream", "splits=[test]", *TINY)
    both = eval_here(stream_ckpt, tiny_corpus, tmp_path / "both", "adapt=both", *dynamic, *cache, *common)
    alone = eval_here(stream_ckpt, tiny_corpus, tmp_path / "dynamic", "adapt=dynamic", *dynamic, *common)
    cached = eval_here(stream_ckpt, tiny_corpus, tmp_path / "cache", "adapt=cache", *cache, *common)
    assert both["test/ppl_dynamic"] == pytest.approx(alone["test/ppl"], rel=1e-9)
    assert both["test/ppl_cache"] == pytest.approx(cached["test/ppl"], rel=1e-6)
    assert both["test/ppl_static"] == pytest.approx(cached["test/ppl_static"], rel=1e-6) == alone["test/ppl_static"]


@pytest.mark.slow
def test_static_reading_equals_plain_eval_at_one_column(stream_ckpt, tiny_corpus, tmp_path):
    plain = eval_here(stream_ckpt, tiny_corpus, tmp_path / "plain", "data.mode=stream", "data.eval_batch_size=1",
                      "splits=[test]", "trainer.accelerator=cpu")  # fmt: skip
    adapted = eval_here(stream_ckpt, tiny_corpus, tmp_path / "adapted", "adapt=dynamic", "adapt.search=false",
                        "adapt.lr=0", "data.mode=stream", "splits=[test]", *TINY)  # fmt: skip
    assert adapted["test/ppl_static"] == pytest.approx(plain["test/ppl"], rel=1e-5)
    assert adapted["test/ppl"] == pytest.approx(adapted["test/ppl_static"], rel=1e-6)


def test_sentence_checkpoint_and_statistics_reuse(trained, tiny_corpus, tmp_path, caplog):
    """A sentence-trained model reads sentences from <sos> (state reset per sentence, history kept); the second
    evaluation reads the statistics the first saved."""
    ckpt = trained / "checkpoints" / "last.ckpt"
    args = ("adapt=dynamic", "adapt.search=false", "adapt.lr=1e-3", "splits=[test]", *TINY)
    first = eval_here(ckpt, tiny_corpus, tmp_path / "a", *args)
    saved = list(ckpt.parent.glob("last.ckpt.rms-sentences-n5-b8-t400.pt"))
    assert len(saved) == 1
    with caplog.at_level("INFO", logger="rnnlm"):
        second = eval_here(ckpt, tiny_corpus, tmp_path / "b", *args)
    assert any("RMS statistics read from" in r.message for r in caplog.records)
    assert second == first
    plain = eval_here(ckpt, tiny_corpus, tmp_path / "plain", "splits=[test]", "trainer.accelerator=cpu")
    assert first["test/ppl_static"] == pytest.approx(plain["test/ppl"], rel=1e-5)  # sentence-level, exact either way
    assert json.loads((tmp_path / "a" / "results.json").read_text())["adapt"]["level"] == "sentence-level"


@pytest.mark.parametrize(
    ("override", "asked"),
    [("trainer=ddp_cpu", "trainer.devices=2, trainer.strategy=ddp_strategy"),
     ("trainer.devices=2", "trainer.devices=2"), ("+trainer.num_nodes=2", "trainer.num_nodes=2")],
)  # fmt: skip
def test_distributed_adaptation_is_refused_before_reading(override, asked, tmp_path):
    cfg = compose_config("ckpt_path=/nonexistent.ckpt", "adapt=cache", override, run_dir=tmp_path, config="eval")
    with pytest.raises(
        UserError,
        match=rf"^adapt=cache reads each split in order at batch size 1 on one process, so "
        rf"it cannot run distributed \({asked}\): drop those settings",
    ):
        evaluate(cfg)


def test_a_compiled_checkpoint_is_evaluated_uncompiled(stream_ckpt, tiny_corpus, tmp_path, caplog):
    ckpt = torch.load(stream_ckpt, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["compile"] = True
    compiled = tmp_path / "compiled.ckpt"
    torch.save(ckpt, compiled)
    with caplog.at_level("INFO", logger="rnnlm"):
        eval_here(compiled, tiny_corpus, tmp_path, "adapt=cache", "adapt.search=false", "data.mode=stream",
                  "splits=[test]", *TINY)  # fmt: skip
    lines = [r.message for r in caplog.records if "module.compile" in r.message]
    assert lines == [f"{compiled} was trained with module.compile=true; adaptation runs it uncompiled (its weights "
                     "change at every segment)"]  # fmt: skip


def test_generate_scores_lines_while_adapting(stream_ckpt, tiny_corpus, tmp_path, capsys):
    """Each line's log-probability under the adapting model; their sum is the corpus perplexity printed beside the
    static one, which is plain scoring's."""
    base = ("ckpt_path=" + str(stream_ckpt), f"score_path={tiny_corpus['test']}", "carry_state=true")
    generate_run(compose_config(*base, config="generate"))
    static = capsys.readouterr().out.strip().splitlines()[-1]
    out = tmp_path / "scores.jsonl"
    generate_run(compose_config(*base, "adapt=cache", "adapt.lam=0.3", f"output={out}", config="generate"))
    last = capsys.readouterr().out.strip().splitlines()[-1]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    static_ppl = float(static.split()[2])
    assert last.endswith(f"(adapt=cache; static, in the same reading: {static_ppl:.4f})")
    adapted_ppl = float(last.split()[2])
    total = sum(r["logprob"] for r in rows)
    # printed with 4 places
    assert adapted_ppl == pytest.approx(math.exp(-total / sum(r["tokens"] for r in rows)), abs=1e-4)
    assert abs(adapted_ppl - static_ppl) > 0.01 and len(rows) == 40


def test_generate_refuses_what_it_cannot_do(stream_ckpt, tiny_corpus, tmp_path):
    base = ("ckpt_path=" + str(stream_ckpt), f"score_path={tiny_corpus['test']}", "carry_state=true")
    with pytest.raises(UserError, match=r"^columns=2: adapt=cache reads the lines in order in one column"):
        generate_run(compose_config(*base, "adapt=cache", "columns=2", config="generate"))
    with pytest.raises(UserError, match=r"adapt.rule=rms needs .*none were saved beside the checkpoint"):
        generate_run(compose_config(*base, "adapt=dynamic", "adapt.segment=9", config="generate"))


def test_the_benchmark_prints_every_method_at_every_segment(stream_ckpt, tiny_corpus, capsys):
    from bench.adapt import main

    data = ["data=text", *(f"data.{s}_path={tiny_corpus[s]}" for s in ("train", "val", "test"))]
    rows = main(["--ckpt", str(stream_ckpt), "--tokens", "150", "--segments", "5", "10", "--lr", "1e-3", *data])
    methods = ("static", "dynamic", "cache", "both")
    assert [(r["segment"], r["method"]) for r in rows] == [(n, m) for n in (5, 10) for m in methods]
    assert all(r["ratio"] == 1.0 for r in rows if r["method"] == "static")
    assert [r["settings"] for r in rows if r["method"] == "dynamic"] == ["lr=0.001 decay=0.002 eps=2e-05",
                                                                         "lr=0.002 decay=0.004 eps=2e-05"]  # fmt: skip
    printed = capsys.readouterr().out
    assert "the first 150 test tokens, stream-level, batch size 1, fp32" in printed and "torch threads" in printed


def test_generate_reads_the_statistics_eval_saved(stream_ckpt, tiny_corpus, tmp_path, capsys):
    """The statistics follow how the model trained, not the reading: a stream model's file, saved by eval.py, serves
    generate.py's scoring of separate sentences (carry_state=false) too."""
    stats = ("++adapt.stats_tokens=400", "++adapt.stats_batch_size=8", "adapt.segment=4")
    eval_here(stream_ckpt, tiny_corpus, tmp_path, "adapt=dynamic", "adapt.search=false", "data.mode=stream",
              "splits=[test]", "trainer.accelerator=cpu", *stats)  # fmt: skip
    assert (stream_ckpt.parent / "last.ckpt.rms-stream-n4-b8-t400.pt").is_file()
    base = ("ckpt_path=" + str(stream_ckpt), f"score_path={tiny_corpus['test']}", "carry_state=false")
    generate_run(compose_config(*base, "adapt=dynamic", "adapt.lr=1e-3", *stats, config="generate"))
    assert "(adapt=dynamic; static, in the same reading: " in capsys.readouterr().out.strip().splitlines()[-1]
