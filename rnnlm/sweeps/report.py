"""Sweep report: `python -m rnnlm.report outputs/train/multiruns/<time>`.

Reads every job folder of a Hydra multirun (its `.hydra/overrides.yaml` and the `results.json` that
train.py writes at the end) and writes, next to them:
  report.md / report.csv   one row per run: overrides, parameters, best val ppl, test ppl, epochs,
                           tokens/s, wall time; sorted by the metric; runs without results listed last
  val_ppl.png              validation perplexity per epoch, every run on one plot, coloured by cell
  ppl_vs_time.png          validation perplexity against training time (each epoch's end), the same runs
  ppl_vs_params.png        best metric against parameter count
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rnnlm.errors import UserError
from rnnlm.files import atomic_open

CELL_COLOURS = {
    "rnn": "tab:blue", "gru": "tab:orange", "lstm": "tab:green", "vanilla": "tab:red",
    "qrnn": "tab:purple", "mogrifier": "tab:brown", "mingru": "tab:pink", "minlstm": "tab:olive",
    "transformer": "tab:cyan",
}  # fmt: skip
COLUMNS = ["run", "overrides", "cell", "params", "best val/ppl", "test/ppl", "epochs", "tokens/s", "wall time"]


@dataclass
class Run:
    name: str  # the job folder, relative to the sweep folder
    overrides: list[str]
    results: dict | None = None  # None: the run failed or has not finished
    history: list[dict] = field(default_factory=list)

    def metric(self, name: str) -> float | None:
        value = (self.results or {}).get("metrics", {}).get(name)
        return None if value is None or math.isnan(value) else float(value)

    @property
    def cell(self) -> str:
        return str((self.results or {}).get("cell", "?"))


def load_runs(sweep_dir: Path) -> list[Run]:
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a folder; pass the multirun folder that `python train.py -m ...` printed.")
    runs = []
    for hydra_dir in sorted(sweep_dir.rglob(".hydra")):
        job = hydra_dir.parent
        overrides_file = hydra_dir / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
        results_file = job / "results.json"
        results = json.loads(results_file.read_text()) if results_file.is_file() else None
        history = (results or {}).get("history", [])
        runs.append(Run(str(job.relative_to(sweep_dir)), list(overrides or []), results, history))
    if not runs:
        raise UserError(
            f"no runs found in {sweep_dir}; pass a multirun folder (its job folders hold .hydra/), "
            "e.g. outputs/train/multiruns/<time>."
        )
    return runs


def sort_runs(runs: list[Run], metric: str, mode: str = "min") -> list[Run]:
    sign = 1 if mode == "min" else -1

    def key(run: Run):
        value = run.metric(metric)
        return (value is None, sign * value if value is not None else 0.0, _natural(run.name))

    return sorted(runs, key=key)


def _natural(name: str):
    return [int(p) if p.isdigit() else p for p in name.replace("/", " ").split()]


def _varying(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    """Overrides shared by every run (said once) and each run's own (its point in the sweep)."""
    common = set.intersection(*(set(r.overrides) for r in runs)) if runs else set()
    shared = [o for o in runs[0].overrides if o in common] if runs else []
    return shared, [[o for o in r.overrides if o not in common] for r in runs]


def rows(runs: list[Run], own: list[list[str]]) -> list[dict]:
    """One row of raw values per run (the CSV), with its own overrides; markdown() formats them."""
    out = []
    for run, overrides in zip(runs, own):
        r = run.results or {}
        out.append({
            "run": run.name,
            "overrides": " ".join(overrides),
            "cell": run.cell if run.results else "failed / unfinished",
            "params": r.get("num_params"),
            "best val/ppl": run.metric("val/ppl"),
            "test/ppl": run.metric("test/ppl"),
            "epochs": r.get("epochs"),
            "tokens/s": r.get("tokens_per_sec"),
            "wall time": r.get("wall_time_s"),
        })  # fmt: skip
    return out


def _cell_text(column: str, value) -> str:
    if value is None or value == "":
        return ""
    if column == "wall time":
        minutes, secs = divmod(int(round(value)), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
    if column in ("params", "epochs"):
        return f"{int(value):,}"
    if column == "tokens/s":
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def markdown(table: list[dict], shared: list[str], metric: str) -> str:
    lines = [f"{len(table)} runs, sorted by {metric}."]
    if shared:
        lines.append(f"Every run: `{' '.join(shared)}`.")
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell_text(c, row[c]) for c in COLUMNS) + " |" for row in table]
    return "\n".join(lines) + "\n"


def _write(path: Path, data: str | bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def plot(runs: list[Run], metric: str, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    done = [r for r in runs if r.results]
    written = []

    for x, xlabel, name in (
        ("epoch", "epoch", "val_ppl.png"),
        ("time_s", "training time (minutes)", "ppl_vs_time.png"),
    ):
        fig, ax = plt.subplots(figsize=(8, 5))
        seen = set()
        for run in done:
            scale = 60 if x == "time_s" else 1
            points = [(h[x] / scale, h["val/ppl"]) for h in run.history if "val/ppl" in h and x in h]
            if not points:
                continue
            label = run.cell if run.cell not in seen else None
            seen.add(run.cell)
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", color=CELL_COLOURS.get(run.cell, "tab:gray"), alpha=0.8, label=label)
            ax.annotate(run.name, (xs[-1], ys[-1]), fontsize=7, xytext=(3, 0), textcoords="offset points")
        title = "Validation perplexity per epoch" if x == "epoch" else "Validation perplexity against training time"
        ax.set(xlabel=xlabel, ylabel="validation perplexity", title=title)
        if x == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if seen:
            ax.legend(title="cell")
        written.append(_save(fig, out_dir / name))

    fig, ax = plt.subplots(figsize=(8, 5))
    seen = set()
    for run in done:
        value = run.metric(metric)
        if value is None or not run.results.get("num_params"):
            continue
        label = run.cell if run.cell not in seen else None
        seen.add(run.cell)
        ax.scatter(run.results["num_params"], value, color=CELL_COLOURS.get(run.cell, "tab:gray"), label=label)
        ax.annotate(run.name, (run.results["num_params"], value), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="parameters", ylabel=metric, title=f"{metric} against model size")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    if seen:
        ax.legend(title="cell")
    written.append(_save(fig, out_dir / "ppl_vs_params.png"))
    plt.close("all")
    return written


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    _write(path, buf.getvalue())
    return path


def report(sweep_dir: Path, metric: str = "val/ppl", mode: str = "min", out_dir: Path | None = None) -> str:
    """Write the table and plots for one sweep; return the markdown table."""
    runs = sort_runs(load_runs(sweep_dir), metric, mode)
    out_dir = out_dir or sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    shared, own = _varying(runs)
    table = rows(runs, own)
    text = markdown(table, shared, metric)
    _write(out_dir / "report.md", f"# Sweep report: {sweep_dir}\n\n" + text)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(table)
    _write(out_dir / "report.csv", buf.getvalue())
    plot(runs, metric, out_dir)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnlm.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder, e.g. outputs/train/multiruns/<time>")
    parser.add_argument("--metric", default="val/ppl", help="sort by this metric (default: val/ppl)")
    parser.add_argument("--mode", choices=("min", "max"), default="min", help="min: lower is better (default)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the sweep folder)")
    args = parser.parse_args(argv)
    try:
        text = report(args.sweep_dir, args.metric, args.mode, args.out)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or args.sweep_dir
    print(text)
    print(f"wrote {out}/report.md, report.csv, val_ppl.png, ppl_vs_time.png, ppl_vs_params.png")
    return 0
