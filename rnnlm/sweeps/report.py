"""Sweep report: `python -m rnnlm.report outputs/train/multiruns/<time> [--baseline RUN_DIR ...]`.

Reads every job folder of a Hydra multirun (its `.hydra/overrides.yaml` and the `results.json` that
train.py writes at the end) and writes, next to them:
  report.md / report.csv   one row per run: overrides, cell, level (sentence- or stream-level perplexity),
                           parameters, best val ppl, test ppl, epochs, tokens/s, wall time; sorted by the
                           metric; runs without results listed last
  val_ppl.png              validation perplexity per epoch, every run on one plot, coloured by cell
  ppl_vs_time.png          validation perplexity against training time (each epoch's end), the same runs
  ppl_vs_params.png        best metric against parameter count

A baseline (`--baseline`, repeatable: a run folder with results.json, such as `python -m rnnlm.ngram`'s, or a
multirun folder of them) joins the table as a row named `baseline ...` and the plots as a horizontal line.
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
from rnnlm.sweeps.report_plots import plot

COLUMNS = ["run", "overrides", "cell", "level", "params", "best val/ppl", "test/ppl", "epochs", "tokens/s", "wall time"]
BPC = ["best val/bpc", "test/bpc"]  # after test/ppl, where a run has them (character tokenizers)


@dataclass
class Run:
    name: str  # the job folder, relative to the sweep folder
    overrides: list[str]
    results: dict | None = None  # None: the run failed or has not finished
    history: list[dict] = field(default_factory=list)
    level: str = ""  # sentence or stream: how its perplexities were read

    def metric(self, name: str) -> float | None:
        value = (self.results or {}).get("metrics", {}).get(name)
        return None if value is None or math.isnan(value) else float(value)

    @property
    def cell(self) -> str:
        return str((self.results or {}).get("cell", "?"))


def load_run(job: Path, name: str) -> Run:
    """One job folder: its overrides, results.json and the level of its perplexities (results.json says; for a
    train.py run that predates it, the data.mode of its composed config)."""
    hydra_dir = job / ".hydra"
    overrides_file = hydra_dir / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
    results_file = job / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else None
    level = (results or {}).get("level", "")
    if results and not level and (hydra_dir / "config.yaml").is_file():
        data = (yaml.safe_load((hydra_dir / "config.yaml").read_text()) or {}).get("data") or {}
        level = "stream" if data.get("mode") == "stream" else "sentence"
    return Run(name, list(overrides or []), results, (results or {}).get("history", []), level)


def load_runs(sweep_dir: Path) -> list[Run]:
    if not sweep_dir.is_dir():
        raise UserError(f"{sweep_dir} is not a folder; pass the multirun folder that `python train.py -m ...` printed.")
    runs = [load_run(d.parent, str(d.parent.relative_to(sweep_dir))) for d in sorted(sweep_dir.rglob(".hydra"))]
    if not runs:
        raise UserError(
            f"no runs found in {sweep_dir}; pass a multirun folder (its job folders hold .hydra/), "
            "e.g. outputs/train/multiruns/<time>."
        )
    return runs


def load_baselines(folders: list[Path]) -> list[Run]:
    """Each --baseline: a run folder with results.json (one baseline), or a multirun folder (each finished job)."""
    baselines = []
    for folder in folders:
        if (folder / "results.json").is_file():
            found = [load_run(folder, folder.name)]
        elif folder.is_dir() and any(folder.rglob("results.json")):
            found = [run for run in load_runs(folder) if run.results]
            for run in found:
                run.name = f"{folder.name}/{run.name}"
        else:
            raise UserError(f"--baseline {folder} holds no results.json; pass the run folder that `python -m "
                            "rnnlm.ngram` (or train.py) printed, or a multirun folder of such runs.")  # fmt: skip
        for run in found:
            run.name = f"baseline {run.name}"
        baselines += found
    return baselines


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
            "level": run.level,
            "params": r.get("num_params"),
            "best val/ppl": run.metric("val/ppl"),
            "test/ppl": run.metric("test/ppl"),
            "best val/bpc": run.metric("val/bpc"),
            "test/bpc": run.metric("test/bpc"),
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
    if column in BPC:
        return f"{value:.3f}"
    if column == "tokens/s":
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def columns(table: list[dict]) -> list[str]:
    """The table's columns: bits per character beside perplexity when some run has them."""
    if not any(row[c] is not None for row in table for c in BPC):
        return COLUMNS
    at = COLUMNS.index("test/ppl") + 1
    return COLUMNS[:at] + BPC + COLUMNS[at:]


def markdown(table: list[dict], shared: list[str], metric: str, baselines: int = 0) -> str:
    runs = len(table) - baselines
    beside = f" and {baselines} baseline{'s' * (baselines > 1)}" if baselines else ""
    lines = [f"{runs} runs{beside}, sorted by {metric}; level: the perplexity is sentence-level (each sentence read "
             "from its start) or stream-level (the state carried across sentences)."]  # fmt: skip
    if shared:
        lines.append(f"Every run: `{' '.join(shared)}`.")
    shown = columns(table)
    lines += ["", "| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(_cell_text(c, row[c]) for c in shown) + " |" for row in table]
    return "\n".join(lines) + "\n"


def _write(path: Path, data: str | bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def report(sweep_dir: Path, metric: str = "val/ppl", mode: str = "min", out_dir: Path | None = None,
           baselines: list[Path] | None = None) -> str:  # fmt: skip
    """Write the table and plots for one sweep (and its baselines); return the markdown table."""
    runs = load_runs(sweep_dir)
    lines = load_baselines(baselines or [])
    out_dir = out_dir or sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    shared, own = _varying(runs)
    every = sort_runs(runs + lines, metric, mode)
    own_of = {id(r): o for r, o in zip(runs, own)} | {id(b): b.overrides for b in lines}
    table = rows(every, [own_of[id(r)] for r in every])
    text = markdown(table, shared, metric, len(lines))
    _write(out_dir / "report.md", f"# Sweep report: {sweep_dir}\n\n" + text)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(table), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table)
    _write(out_dir / "report.csv", buf.getvalue())
    plot(sort_runs(runs, metric, mode), lines, metric, out_dir)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnlm.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder, e.g. outputs/train/multiruns/<time>")
    parser.add_argument("--metric", default="val/ppl", help="sort by this metric (default: val/ppl)")
    parser.add_argument("--mode", choices=("min", "max"), default="min", help="min: lower is better (default)")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the sweep folder)")
    parser.add_argument("--baseline", type=Path, action="append", default=[], metavar="RUN_DIR",
                        help="a run folder with results.json (python -m rnnlm.ngram's), or a multirun folder of "
                        "them, shown in the table and as a line in the plots; repeatable")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        text = report(args.sweep_dir, args.metric, args.mode, args.out, args.baseline)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or args.sweep_dir
    print(text)
    print(f"wrote {out}/report.md, report.csv, val_ppl.png, ppl_vs_time.png, ppl_vs_params.png")
    return 0
