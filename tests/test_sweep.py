"""The README's sweep, for real on a tiny corpus: 3 cells x 2 sizes, then the sweep report."""

from __future__ import annotations

import csv
import json
import time

import pytest
import torch
from tokenizers import Tokenizer

from rnnlm.errors import UserError
from rnnlm.sweeps.report import load_runs, main
from tests.conftest import run_train, tiny_overrides


def sweep_overrides(corpus, sweep_dir) -> list[str]:
    single = [o for o in tiny_overrides(corpus, sweep_dir) if not o.startswith("hydra.run.dir")]
    return ["-m", *single, f"hydra.sweep.dir={sweep_dir}", "hydra.launcher.n_jobs=2"]


@pytest.mark.slow
def test_cell_by_size_sweep_and_its_report(tiny_corpus, tmp_path, capsys):
    sweep_dir = tmp_path / "sweep"
    started = time.monotonic()
    run_train(*sweep_overrides(tiny_corpus, sweep_dir), "model=rnn,gru,lstm", "model.hidden_size=8,16", cwd=tmp_path)
    sweep_s = time.monotonic() - started

    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == ["0", "1", "2", "3", "4", "5"]  # one folder per run, none shared
    points = set()
    for job in jobs:
        results = json.loads((job / "results.json").read_text())
        points.add((results["cell"], results["hidden_size"]))
        assert results["epochs"] == 2 and len(results["history"]) == 2
        assert (job / "checkpoints" / "last.ckpt").is_file()
    assert points == {(c, h) for c in ("rnn", "gru", "lstm") for h in (8, 16)}

    assert main([str(sweep_dir)]) == 0
    printed = capsys.readouterr().out
    assert "6 runs, sorted by val/ppl" in printed
    with open(sweep_dir / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6
    ppl = [float(r["best val/ppl"]) for r in rows]
    assert ppl == sorted(ppl)
    expected = {frozenset((f"model={c}", f"model.hidden_size={h}")) for c in ("rnn", "gru", "lstm") for h in (8, 16)}
    assert {frozenset(r["overrides"].split()) for r in rows} == expected  # each row names its own sweep point
    for r in rows:  # each row against its job's own files: the CSV log, the checkpoint, results.json
        job = sweep_dir / r["run"]
        results = json.loads((job / "results.json").read_text())
        with open(job / "csv" / "metrics.csv") as f:
            logged = list(csv.DictReader(f))
        assert int(r["params"]) == num_params(job, results["cell"], results["hidden_size"])
        assert r["cell"] == results["cell"] and int(r["epochs"]) == 2
        assert float(r["tokens/s"]) == pytest.approx(mean(logged, "train/tokens_per_sec"), rel=1e-6)  # per epoch
        assert float(r["best val/ppl"]) == pytest.approx(min(column(logged, "val/ppl")), rel=1e-6)
        assert [float(r["test/ppl"])] == pytest.approx(column(logged, "test/ppl"), rel=1e-6)
        assert float(r["wall time"]) == pytest.approx(results["wall_time_s"]) and 0 < results["wall_time_s"] < sweep_s
    for png in ("val_ppl.png", "ppl_vs_time.png", "ppl_vs_params.png"):
        assert (sweep_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


EVERY_CELL = ("lstm", "gru", "qrnn", "mogrifier", "mingru", "minlstm", "transformer")


@pytest.mark.slow
def test_every_cell_at_one_budget_and_the_report_against_time(tiny_corpus, tmp_path, capsys):
    """The cells issue's sweep, scaled to the tiny corpus: every cell at one parameter count (20K, tied), then
    the report's parameters, tokens/s, perplexities and its plot of perplexity against training time."""
    sweep_dir = tmp_path / "sweep"
    cells = ",".join(EVERY_CELL)
    run_train(*sweep_overrides(tiny_corpus, sweep_dir), f"model={cells}", "model.params=20K", "model.tie_weights=true",
              cwd=tmp_path)  # fmt: skip
    jobs = [json.loads((job / "results.json").read_text()) for job in sorted(sweep_dir.glob("[0-9]*"))]
    assert sorted(r["cell"] for r in jobs) == sorted(EVERY_CELL)
    for r in jobs:
        assert abs(r["num_params"] - 20_000) <= 1_000, r["cell"]  # within 5% of the budget
        times = [h["time_s"] for h in r["history"]]
        assert len(times) == 2 and 0 < times[0] < times[1] < r["wall_time_s"], r["cell"]
    transformer = next(sweep_dir / str(i) for i, r in enumerate(jobs) if r["cell"] == "transformer")
    assert "rnnlm.training.schedulers.Warmup" in (transformer / ".hydra" / "config.yaml").read_text()  # its own

    assert main([str(sweep_dir)]) == 0
    assert "7 runs, sorted by val/ppl" in capsys.readouterr().out
    with open(sweep_dir / "report.csv") as f:
        rows = {r["cell"]: r for r in csv.DictReader(f)}
    for r in jobs:
        row = rows[r["cell"]]
        assert int(row["params"]) == r["num_params"] and float(row["tokens/s"]) == pytest.approx(r["tokens_per_sec"])
        assert float(row["test/ppl"]) == pytest.approx(r["metrics"]["test/ppl"])
    assert (sweep_dir / "ppl_vs_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def column(logged: list[dict], key: str) -> list[float]:
    return [float(row[key]) for row in logged if row.get(key)]


def mean(logged: list[dict], key: str) -> float:
    values = column(logged, key)
    return sum(values) / len(values)


def num_params(job, cell: str, hidden: int, embed: int = 16) -> int:
    """A 2-layer model's parameters (debug=tiny's embedding) counted by hand: PyTorch's recurrent layers (per gate
    an input weight, a state weight and two biases), the embedding and the output layer (with its bias) over the
    vocabulary of the tokenizer in the job's checkpoint."""
    hp = torch.load(job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["hyper_parameters"]
    vocab = Tokenizer.from_str(hp["tokenizer_json"]).get_vocab_size()
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    layers = gates * hidden * (embed + hidden + 2) + gates * hidden * (hidden + hidden + 2)
    return vocab * embed + layers + hidden * vocab + vocab


def test_report_lists_a_run_without_results_as_failed(tmp_path):
    for name, results in (("0", {"cell": "gru", "num_params": 10, "metrics": {"val/ppl": 5.0}}), ("1", None)):
        job = tmp_path / name
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- model.hidden_size={name}\n")
        if results:
            (job / "results.json").write_text(json.dumps(results))
    assert main([str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert text.index("| 0 |") < text.index("| 1 |") and "failed / unfinished" in text


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_report_on_a_folder_without_runs_says_so(make, tmp_path):
    with pytest.raises(UserError, match="multirun folder"):
        load_runs(make(tmp_path))


def fake_job(folder, overrides: list[str], results: dict | None, mode: str | None = None) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if mode:
        (folder / ".hydra" / "config.yaml").write_text(f"data:\n  mode: {mode}\n")
    if results is not None:
        (folder / "results.json").write_text(json.dumps(results))


def test_baselines_join_the_table_and_the_plots_as_lines(tmp_path, capsys):
    """The lectures' progression: a sweep of cells and, beside it, a KN5 run folder and a multirun of n-grams."""
    sweep = tmp_path / "sweep"
    history = [{"epoch": 0, "time_s": 60.0, "val/ppl": 200.0}, {"epoch": 1, "time_s": 120.0, "val/ppl": 150.0}]
    for name, cell, ppl in (("0", "window", 150.0), ("1", "lstm", 120.0)):
        results = {
            "cell": cell,
            "num_params": 10**6,
            "metrics": {"val/ppl": ppl, "test/ppl": ppl - 5},
            "history": history,
        }
        fake_job(sweep / name, [f"model={cell}", "data.mode=sentences"], results, mode="sentences")
    kn5 = {"cell": "kn5", "level": "sentence", "metrics": {"val/ppl": 148.0, "test/ppl": 141.2}}
    fake_job(tmp_path / "kn5", ["order=5"], kn5)
    for i, order in enumerate((2, 3)):
        fake_job(tmp_path / "orders" / str(i), [f"order={order}"],
                 {"cell": f"kn{order}", "level": "sentence", "metrics": {"val/ppl": 200.0 - order}})  # fmt: skip

    assert main([str(sweep), "--baseline", str(tmp_path / "kn5"), "--baseline", str(tmp_path / "orders")]) == 0
    text = capsys.readouterr().out
    assert "2 runs and 3 baselines, sorted by val/ppl" in text
    with open(sweep / "report.csv") as f:
        table = [(r["run"], r["cell"], r["level"], r["overrides"], r["best val/ppl"]) for r in csv.DictReader(f)]
    assert table == [
        ("1", "lstm", "sentence", "model=lstm", "120.0"), ("baseline kn5", "kn5", "sentence", "order=5", "148.0"),
        ("0", "window", "sentence", "model=window", "150.0"),
        ("baseline orders/1", "kn3", "sentence", "order=3", "197.0"),
        ("baseline orders/0", "kn2", "sentence", "order=2", "198.0"),
    ]  # fmt: skip

    import matplotlib.pyplot as plt

    from rnnlm.sweeps.report import load_baselines
    from rnnlm.sweeps.report_plots import _baseline_lines

    fig, ax = plt.subplots()
    assert _baseline_lines(ax, load_baselines([tmp_path / "kn5", tmp_path / "orders"]), "test/ppl") == 1
    (line,) = ax.lines
    assert list(line.get_ydata()) == [141.2, 141.2] and line.get_label() == "kn5 (sentence-level) 141.2"
    plt.close(fig)


def test_a_baseline_without_results_is_refused_in_one_sentence(tmp_path):
    fake_job(tmp_path / "sweep" / "0", ["model=lstm"], {"cell": "lstm", "metrics": {"val/ppl": 1.0}})
    assert main([str(tmp_path / "sweep"), "--baseline", str(tmp_path / "nothing")]) == 2
    with pytest.raises(UserError, match=r"^--baseline .*nothing holds no results.json; pass the run folder that"):
        from rnnlm.sweeps.report import load_baselines

        load_baselines([tmp_path / "nothing"])
