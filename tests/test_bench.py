"""The benchmark suite: its table in the docs, the regression check, and a quick run on tiny data."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from bench import suite
from bench.ceiling import training_flops_per_token
from bench.common import Row
from rnnlm.precision import cpu_has_bf16
from tests.conftest import ROOT


def _rows(speed: float = 7000.0, seconds: float = 1.0) -> list[Row]:
    return [
        Row("train/cpu/lstm-2x200/fp32/rnnlm", "LSTM", [speed * 0.9, speed, speed * 1.1], "tokens/s", "higher",
            (">=", 7100)),
        Row("data/ptb/reload", "reload", [seconds], "s", "lower"),
        Row("padding/x/batches", "batches", [962], "batches/epoch"),
    ]  # fmt: skip


def test_row_reports_median_spread_and_goal():
    row = _rows()[0]
    assert row.median == 7000
    assert row.markdown() == (
        "| train/cpu/lstm-2x200/fp32/rnnlm | LSTM | **7,000** | 6,300-7,700 | tokens/s | >= 7,100: **missed** |"
    )
    assert Row("k", "w", [2.0], "x", "higher", (">=", 0.95)).goal_text() == ">= 0.95: met"
    assert Row("k", "w", [962.0], "batches").markdown() == "| k | w | **962** | one run | batches |  |"


def test_doc_table_round_trip_keeps_text_and_unmeasured_rows(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nIntro.\n\n## Analysis\n\nHand-written text.\n")
    suite.write_doc(_rows(), "test machine", "python -m bench", doc)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\n") and "Hand-written text." in text and "test machine" in text
    assert {k: v for k, (v, _) in suite.committed(doc).items()} == {
        "train/cpu/lstm-2x200/fp32/rnnlm": 7000.0, "data/ptb/reload": 1.0, "padding/x/batches": 962.0,
    }  # fmt: skip
    # A run of one section replaces its rows and keeps the others; the text around the block stays.
    suite.write_doc([_rows(speed=8000.0)[0]], "test machine", "python -m bench --only train", doc)
    assert suite.committed(doc)["train/cpu/lstm-2x200/fp32/rnnlm"][0] == 8000.0
    assert suite.committed(doc)["data/ptb/reload"][0] == 1.0
    assert doc.read_text().count(suite.BEGIN) == 1 and "Hand-written text." in doc.read_text()
    # Rows keep their places; a new row goes after the last one of its kind; a full run starts afresh.
    extra = Row("train/cpu/gru-2x200/fp32/rnnlm", "GRU", [5000.0], "tokens/s", "higher")
    suite.write_doc([extra], "test machine", "python -m bench --only train", doc)
    assert list(suite.committed(doc)) == [
        "train/cpu/lstm-2x200/fp32/rnnlm", "train/cpu/gru-2x200/fp32/rnnlm", "data/ptb/reload", "padding/x/batches",
    ]  # fmt: skip
    suite.write_doc([extra], "test machine", "python -m bench", doc, merge=False)
    assert list(suite.committed(doc)) == ["train/cpu/gru-2x200/fp32/rnnlm"]


def test_compare_reports_only_worse_by_more_than_ten_percent(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    suite.write_doc(_rows(), "m", "python -m bench", doc)
    assert suite.compare(_rows(speed=6400.0, seconds=1.09), doc) == []  # -8.6% and +9%: noise
    worse = suite.compare(_rows(speed=6000.0, seconds=1.5), doc)
    assert len(worse) == 2
    assert worse[0].startswith("train/cpu/lstm-2x200/fp32/rnnlm: 7000 -> 6000 tokens/s (-14%)")
    assert worse[1].startswith("data/ptb/reload: 1 -> 1.5 s (+50%)")
    # Faster is never a regression, nor are facts without a direction (batches per epoch).
    assert suite.compare([*_rows(speed=9000.0, seconds=0.5)[:2], Row("padding/x/batches", "b", [2000], "b")], doc) == []


def bench_cli(monkeypatch, *argv: str) -> int:
    """`python -m bench ARGV` in this process: its exit code."""
    from bench.__main__ import main

    monkeypatch.setattr(sys, "argv", ["python -m bench", *argv])
    try:
        return main()
    except SystemExit as stop:  # argparse's refusals
        return stop.code


def test_compare_cli_exit_code(tmp_path, monkeypatch, capsys):
    doc = tmp_path / "BENCHMARKS.md"
    suite.write_doc(_rows(), "m", "python -m bench", doc)
    for speed, code in ((7100.0, 0), (5000.0, 1)):
        results = tmp_path / f"results-{speed}.json"
        suite.save_json(_rows(speed=speed), results)
        assert bench_cli(monkeypatch, "--compare", "--results", str(results), "--doc", str(doc)) == code
        out = capsys.readouterr().out
        assert "compared 2 figures" in out
        assert ("regression: train/cpu/lstm-2x200/fp32/rnnlm" in out) == (code == 1)


def test_flops_per_token():
    # LSTM 2x200, 10,002 words: 4 gates x 2 x 200 x 400 per layer, x2 layers, + 2 x 200 x 10,002; x3 for training
    assert training_flops_per_token("lstm", 200, 200, 2, 10002) == 3 * (2 * 4 * 2 * 200 * 400 + 2 * 200 * 10002)
    assert training_flops_per_token("gru", 10, 20, 1, 100, [30]) == 3 * (3 * 2 * 20 * 30 + 2 * 20 * 30 + 2 * 30 * 100)
    # One size per layer (AWD-LSTM's 1150-1150-400 on a 400 embedding)
    awd = 4 * 2 * (1150 * 1550 + 1150 * 2300 + 400 * 1550) + 2 * 400 * 10000
    assert training_flops_per_token("lstm", 400, [1150, 1150, 400], 3, 10000) == 3 * awd


@pytest.mark.slow
def test_quick_suite_on_tiny_data(tiny_corpus, tmp_path):
    """`python -m bench --quick` runs its sections end to end (the tiny corpus stands in for PTB)."""
    env = {**os.environ, "BENCH_OUT": str(tmp_path / "out")}
    overrides = [f"data.train_path={tiny_corpus['train']}", f"data.val_path={tiny_corpus['val']}",
                 f"data.test_path={tiny_corpus['test']}", "data=text", "data.batch_size=8"]  # fmt: skip
    sections = ["ceiling", "train", "loss", "quality", "stream_speed", "stream", "awd_speed", "generation", "padding",
                "adaptive", "cells", "gpu"]  # fmt: skip
    cmd = [sys.executable, "-m", "bench", "--quick", "--only", *sections, *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads((tmp_path / "out" / "results.json").read_text())
    keys = {r["key"] for r in rows}
    for cell in ("rnn", "gru", "lstm"):
        for shape in ("2x200/fp32", "2x200/bf16", "2x650/fp32"):
            assert {f"train/cpu/{cell}-{shape}/{k}" for k in ("rnnlm", "plain", "rnnlm-vs-plain", "mfu")} <= keys
        assert f"quality/{cell}-2x200/fp32/val-ppl" in keys
    assert {"quality/lstm-2x200/bf16/val-ppl", "quality/lstm-2x200/fp32/val-ppl-seed-1"} <= keys
    assert {"train/cpu/lstm-2x200/fp32/rnnlm-vs-stream", "train/cpu/lstm-2x200/bf16/rnnlm-vs-fp32-stream"} <= keys
    assert {"train/cpu/lstm-2x200/fp32/stream", "generation/beam-5", "ceiling/cpu/matmul-bf16"} <= keys
    assert {"train/cpu/lstm-2x200/fp32/stream-rnnlm-vs-plain", "quality/stream/ptb_stream_small/1ep-test-ppl",
            "quality/stream/quick/plain-val-ppl"} <= keys  # fmt: skip
    assert {f"train/cpu/awd/{k}" for k in ("locked", "weight-drop", "bf16", "batch64", "weight-drop-vs-none",
                                           "bf16-vs-fp32-peer")} <= keys  # fmt: skip
    for prec in ("fp32", "bf16") if cpu_has_bf16() else ("fp32",):  # bench.loss skips bf16 there, saying so
        assert {f"loss/cpu/{prec}/{k}" for k in ("rnnlm", "torch", "torch-chunked", "torch-vs-rnnlm", "step-rnnlm",
                                                 "step-torch", "step-rnnlm-vs-torch")} <= keys  # fmt: skip
    assert {f"train/cpu/vocab267k/{k}" for k in ("full", "adaptive", "adaptive-vs-full")} <= keys
    assert {"quality/vocab267k/full/val-ppl", "quality/vocab267k/adaptive/val-ppl"} <= keys
    check_derived_train_rows(rows, overrides)
    check_cells_rows(rows)
    assert "GPU rows skipped" in proc.stdout or any(k.startswith("train/cuda") for k in keys)
    assert "wrote the results table" not in proc.stdout  # a quick run never touches the docs


def check_cells_rows(rows: list[dict]) -> None:
    """The cells section: every cell at the tied 2x200 LSTM's count within 5%, each ratio from its two speeds."""
    values = {r["key"]: r["values"] for r in rows}
    budget = values["cells/lstm/params"][0]
    for cell in ("lstm", "gru", "qrnn", "mogrifier", "mingru", "minlstm"):
        assert abs(values[f"cells/{cell}/params"][0] - budget) <= 0.05 * budget
        assert 0 < values[f"cells/{cell}/flop-share"][0] < 100 and values[f"cells/cpu/{cell}/generation"][0] > 0
        for window in (35, 70):
            base = f"cells/cpu/{cell}/fp32/w{window}"
            assert values[f"{base}/train"][0] > 0 and values[f"{base}/layers-mfu"][0] > 0
            for kind in ("train", "layers") if cell != "lstm" else ():
                expected = values[f"{base}/{kind}"][0] / values[f"cells/cpu/lstm/fp32/w{window}/{kind}"][0]
                assert values[f"{base}/{kind}-vs-lstm"] == pytest.approx([expected])


class Clock:
    """time.perf_counter for a timed loop: one second more at each reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


# The train/ ratio rows whose parts are not named <folder>/<a> and <folder>/<b> by their key <folder>/<a>-vs-<b>
RATIO_PARTS = {
    "train/cpu/awd/weight-drop-vs-none": ("train/cpu/awd/weight-drop", "train/cpu/awd/locked"),
    "train/cpu/lstm-2x200/bf16/rnnlm-vs-fp32-stream": ("train/cpu/lstm-2x200/bf16/rnnlm",
                                                       "train/cpu/lstm-2x200/fp32/stream"),
    "train/cpu/lstm-2x200/fp32/stream-rnnlm-vs-plain": ("train/cpu/lstm-2x200/fp32/stream-rnnlm",
                                                        "train/cpu/lstm-2x200/fp32/stream-plain"),
}  # fmt: skip


def check_derived_train_rows(rows: list[dict], overrides: list[str]) -> None:
    """The quick suite's CPU train/ rows that are computed from others, computed again: each ratio (per round)
    from its two speeds, each MFU from its rnnlm speed, the model's FLOPs per token and the run's matmul ceiling."""
    import statistics

    from bench.common import config
    from rnnlm.run.build import build_datamodule

    values = {r["key"]: r["values"] for r in rows}
    ceiling = {p: statistics.median(values[f"ceiling/cpu/matmul-{p}"]) for p in ("fp32", "bf16")}
    dm = build_datamodule(config(*overrides), None)  # the vocabulary the suite's models were built over
    dm.prepare()
    ratios = mfus = 0
    for r in rows:
        key = r["key"]
        if key.startswith("train/cpu/") and r["unit"] == "x":
            folder, name = key.rsplit("/", 1)
            a, b = name.split("-vs-")
            num, den = RATIO_PARTS.get(key, (f"{folder}/{a}", f"{folder}/{b}"))
            assert r["values"] == pytest.approx([x / y for x, y in zip(values[num], values[den], strict=True)]), key
            ratios += 1
        elif key.startswith("train/cpu/") and key.endswith("/mfu"):
            shape, prec = key.split("/")[2:4]  # e.g. lstm-2x650, fp32
            cell, size = shape.split("-")
            layers, hidden = (int(n) for n in size.split("x"))
            flops = training_flops_per_token(cell, hidden, hidden, layers, dm.vocab_size)
            speeds = values[key.removesuffix("mfu") + "rnnlm"]
            assert r["values"] == pytest.approx([100 * v * flops / (ceiling[prec] * 1e9) for v in speeds]), key
            mfus += 1
    assert (ratios, mfus) == (3 * 3 + 2 + 1 + 2 + 1, 3 * 3)  # rnnlm-vs-plain per cell and shape, the rest once


def test_the_gpu_sections_parts_run_alone(tiny_corpus, monkeypatch):
    """The GPU section's loops over the recurrent layers and the output layer alone, and its ratios (checked
    here on the CPU, where they run the same code)."""
    from bench import gpu
    from bench.common import Row
    from bench.gpu import output_ceiling, parts_rows, rnn_ceiling
    from bench.train_throughput import train_config
    from rnnlm.run.build import build

    overrides = ["data=text", f"data.train_path={tiny_corpus['train']}", f"data.val_path={tiny_corpus['val']}",
                 f"data.test_path={tiny_corpus['test']}", "data.batch_size=16"]  # fmt: skip
    for cell in ("rnn", "gru", "lstm"):
        cfg = train_config(cell, 16, 2, "32-true", 6, overrides)
        datamodule = build(cfg)[0]
        batches = list(datamodule.train_dataloader())[:6]
        # With a clock that reads one second later each time (the start after the warm-up, the end), tokens/s is
        # the count of the timed batches' targets that are not <pad>: batches 2..5, the 2 warm-up ones left out.
        timed = sum(int((b.targets != datamodule.ids["pad"]).sum()) for b in batches[2:])
        monkeypatch.setattr(gpu, "time", Clock())
        assert rnn_ceiling(cfg, batches, 2, bf16=False, device="cpu") == timed
        monkeypatch.setattr(gpu, "time", Clock())
        assert output_ceiling(cfg, batches, 2, False, "cpu", datamodule.vocab_size) == timed
    rows = parts_rows("b", "LSTM", Row("b/rnnlm", "rnnlm", [300.0], "tokens/s"), [1000.0], [500.0])
    assert [r.key for r in rows] == ["b/rnn-ceiling", "b/output-layer", "b/layers-and-output",
                                     "b/rnnlm-vs-rnn-ceiling", "b/rnnlm-vs-layers-and-output"]  # fmt: skip
    assert rows[2].median == pytest.approx(1000 / 3) and rows[4].median == pytest.approx(0.9)  # 1/(1/1000 + 1/500)
    assert rows[4].goal_text() == ">= 0.9: met"


def test_only_names_sections_and_leaves_overrides_alone(monkeypatch, capsys):
    assert bench_cli(monkeypatch, "--only", "trian", "data.batch_size=8") == 2
    assert "--only trian: no such section; the sections are ceiling, train" in capsys.readouterr().err


def test_the_ablation_switches_off_each_part_the_recipe_uses(monkeypatch):
    from bench import awd

    runs = []

    def train(name, overrides, folder, threads):
        runs.append((folder.name, tuple(overrides), threads))
        return {"test/ppl": 100.0 + len(overrides)}

    monkeypatch.setattr(awd, "train_point", train)
    monkeypatch.setattr(awd.os, "sched_getaffinity", lambda pid: {0, 1})
    rows = {r.key: r.median for r in awd.ablation_rows("ptb_cpu_18min", jobs=2)}
    assert sorted(runs) == [("all", (), 1), ("averaging", ("module.averaging.kind=none",), 1)]  # its one AWD part
    assert rows["quality/ablation/ptb_cpu_18min/without-averaging-delta"] == 1.0
    runs.clear()
    awd.ablation_rows("awd_lstm_ptb")
    assert len(runs) == 1 + len(awd.ABLATION) and {t for *_, t in runs} == {2}  # every part; one job, both cores
    assert ("ar-tar", ("module.ar=0", "module.tar=0"), 2) in runs
    runs.clear()
    awd.ablation_rows()  # the default: the longer budget's recipe, which uses every part
    assert len(runs) == 1 + len(awd.ABLATION)


def test_an_ablation_point_is_train_py_in_its_folder_and_read_once_done(monkeypatch, tmp_path):
    from bench import awd

    calls = []

    def fake_train(command, env, stdout, stderr, cwd):  # what train.py leaves: results.json with its overrides
        calls.append((command, env["OMP_NUM_THREADS"]))
        results = {"overrides": command[2:-1], "metrics": {"test/ppl": 77.7}, "epochs": 18, "wall_time_s": 60.0}
        (tmp_path / "p" / "results.json").write_text(json.dumps(results))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(awd.subprocess, "run", fake_train)
    got = awd.train_point("ptb_cpu_75min", ["model.weight_drop=0"], tmp_path / "p", threads=1)
    assert got == {"test/ppl": 77.7, "epochs": 18, "wall_time_s": 60.0, "threads": 1}  # from its stdout.log
    ((command, threads),) = calls
    assert command[1].endswith("train.py") and command[2] == "experiment=ptb_cpu_75min" and threads == "1"
    assert command[-2:] == ["model.weight_drop=0", f"hydra.run.dir={tmp_path / 'p'}"]
    assert awd.train_point("ptb_cpu_75min", ["model.weight_drop=0"], tmp_path / "p", threads=1) == got
    assert len(calls) == 1  # done: read, not trained again
    with pytest.raises(RuntimeError, match="is a run of other overrides .*: delete .* to redo it"):
        awd.train_point("ptb_cpu_75min", ["model.weight_drop=0.1"], tmp_path / "p", threads=1)


def test_an_unfinished_ablation_prints_the_points_done_and_trains_none(monkeypatch, tmp_path):
    from bench import awd

    def done(point, overrides, ppl):
        command = ["experiment=ptb_cpu_75min", *awd.RECIPE_RUN, *overrides]
        results = {"overrides": command, "metrics": {"test/ppl": ppl}, "epochs": 18, "wall_time_s": 60.0}
        (tmp_path / "ablation" / "ptb_cpu_75min" / point).mkdir(parents=True)
        (tmp_path / "ablation" / "ptb_cpu_75min" / point / "results.json").write_text(json.dumps(results))

    monkeypatch.setenv("BENCH_OUT", str(tmp_path))
    monkeypatch.setattr(awd.subprocess, "run", lambda *a, **k: pytest.fail("a point was trained"))
    done("weight-drop", ["model.weight_drop=0"], 76.3)
    rows = {r.key: r.median for r in awd.ablation_rows(done_only=True)}
    assert rows == {"quality/ablation/ptb_cpu_75min/without-weight-drop": 76.3}  # no delta without the whole recipe
    done("all", [], 77.8)
    rows = {r.key: r.median for r in awd.ablation_rows(done_only=True)}
    assert list(rows) == [f"quality/ablation/ptb_cpu_75min/{k}" for k in ("all", "without-weight-drop",
                                                                           "without-weight-drop-delta")]  # fmt: skip
    assert rows["quality/ablation/ptb_cpu_75min/without-weight-drop-delta"] == pytest.approx(-1.5)


def test_each_budget_recipe_is_timed_against_its_own_budget(monkeypatch):
    from bench import awd

    monkeypatch.setattr(awd, "budget_minutes", lambda windows, overrides=(): ({6: 20.0, 40: 120.0}, "plain loop"))
    monkeypatch.setattr(awd, "recipe", lambda name, *o: {"test/ppl": 90.0, "fit_s": 600.0, "epochs": 7})
    rows = {r.key: r for r in awd.budget_rows(names=["ptb_cpu_18min", "ptb_cpu_75min_sentences"])}
    budgets = [k for k in rows if k.startswith("budget/")]
    assert budgets == ["budget/examples-6ep-minutes", "budget/examples-40ep-minutes"]
    assert rows["quality/budget/ptb_cpu_18min/minutes"].goal == ("<=", 20.0)
    assert rows["quality/budget/ptb_cpu_75min_sentences/minutes"].goal == ("<=", 120.0)
    assert rows["quality/budget/ptb_cpu_75min_sentences/minutes"].median == 10.0
    assert rows["quality/budget/ptb_cpu_75min_sentences/test-ppl"].goal == ("<=", 100.0)
    assert "sentence-level" in rows["quality/budget/ptb_cpu_75min_sentences/test-ppl"].what
    assert "stream-level" in rows["quality/budget/ptb_cpu_18min/test-ppl"].what


def test_the_cells_quality_search_extends_its_grid_and_reruns_a_diverged_run_at_half_the_rate(monkeypatch):
    """bench.cells_quality's choices, with each train.py run replaced by a fixed answer: the lr grid grows past an
    edge that wins, and a final run that diverges runs again at half the rate, in a folder of its own."""
    from bench import cells_quality

    curve = {
        "a": {2.5: 700.0, 5: 600.0, 10: 650.0, 20: 900.0, 40: 990.0},
        "b": {10: 500.0, 20: 450.0, 40: 400.0, 80: 990.0},
    }
    asked: list[list[str]] = []

    def fake(stage, points, jobs):
        asked.append(sorted(points))
        if stage == "lr-search":
            return {p: {"val/ppl": curve[p.split("-lr")[0]][float(p.split("-lr")[1])]} for p in points}
        return {p: {"diverged": True, "test/ppl": math.inf} if p == "b" else {"test/ppl": 99.0, "epochs": 7}
                for p in points}  # fmt: skip

    monkeypatch.setattr(cells_quality, "train_all", fake)
    best = cells_quality.search_lrs(["a", "b"], [], (10, 20, 40), jobs=2)
    assert best == {"a": 5, "b": 40} and asked[1:] == [["a-lr5", "b-lr80"], ["a-lr2.5"]]
    got = cells_quality.train_finals(["a", "b"], [], best, {"a": 1.0, "b": 1.0}, jobs=2)
    assert asked[3:] == [["a", "b"], ["b-lr20"]] and best == {"a": 5, "b": 20} and got["b"]["test/ppl"] == 99.0
