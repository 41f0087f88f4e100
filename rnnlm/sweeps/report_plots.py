"""The sweep report's plots (rnnlm.sweeps.report): validation perplexity per epoch and against training time, and
the metric against model size; every sweep run a line or a point coloured by its cell, every baseline (an n-gram,
or any run given with --baseline) a dashed horizontal line labelled with its name, level and value."""

from __future__ import annotations

import io
from pathlib import Path

from rnnlm.files import atomic_open

CELL_COLOURS = {
    "rnn": "tab:blue", "gru": "tab:orange", "lstm": "tab:green", "vanilla": "tab:red",
    "qrnn": "tab:purple", "mogrifier": "tab:brown", "mingru": "tab:pink", "minlstm": "tab:olive",
    "transformer": "tab:cyan", "window": "tab:gray",
}  # fmt: skip
BASELINE_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)))


def plot(runs: list, baselines: list, metric: str, out_dir: Path) -> list[Path]:
    """`runs` and `baselines` are rnnlm.sweeps.report.Run; returns the files written."""
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
            ax.plot(xs, ys, marker="o", color=CELL_COLOURS.get(run.cell, "black"), alpha=0.8, label=label)
            ax.annotate(run.name, (xs[-1], ys[-1]), fontsize=7, xytext=(3, 0), textcoords="offset points")
        lines = _baseline_lines(ax, baselines, "val/ppl")
        title = "Validation perplexity per epoch" if x == "epoch" else "Validation perplexity against training time"
        ax.set(xlabel=xlabel, ylabel="validation perplexity", title=title)
        if x == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if seen or lines:
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
        ax.scatter(run.results["num_params"], value, color=CELL_COLOURS.get(run.cell, "black"), label=label)
        ax.annotate(run.name, (run.results["num_params"], value), fontsize=7, xytext=(3, 3), textcoords="offset points")
    lines = _baseline_lines(ax, baselines, metric)
    ax.set(xlabel="parameters", ylabel=metric, title=f"{metric} against model size")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    if seen or lines:
        ax.legend(title="cell")
    written.append(_save(fig, out_dir / "ppl_vs_params.png"))
    plt.close("all")
    return written


def _baseline_lines(ax, baselines: list, metric: str) -> int:
    """A dashed horizontal line per baseline that has `metric`; how many were drawn."""
    drawn = 0
    for baseline in baselines:
        value = baseline.metric(metric)
        if value is None:
            continue
        style = BASELINE_STYLES[drawn % len(BASELINE_STYLES)]
        label = f"{baseline.cell} ({baseline.level}-level) {value:.1f}"
        ax.axhline(value, linestyle=style, color=CELL_COLOURS.get(baseline.cell, "dimgray"), linewidth=1.5, label=label)
        drawn += 1
    return drawn


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return path
