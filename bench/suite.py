"""The benchmark suite behind `python -m bench`: its sections, the results table in docs/BENCHMARKS.md,
and the regression check against that committed table.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from bench.common import TABLE_HEADER, Row, ratio_row

DOC = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"
BEGIN = "<!-- bench:begin: written by `python -m bench`; edit the text around this block, not inside it -->"
END = "<!-- bench:end -->"
REGRESSION = 0.10  # a speed more than 10% worse than the committed table is a regression


@dataclass(frozen=True)
class Plan:
    """How much to run: the full suite, or a quick smoke run whose numbers are not for the docs."""

    repeats: int = 3
    # The 2x200 rows compare loops whose difference (a few %) is smaller than this machine's noise
    # (+-15%): more rounds for a steadier median.
    small_repeats: int = 5
    small: tuple[int, int] = (140, 20)  # 2x200 rows: batches per run, of which warm-up
    large: tuple[int, int] = (40, 8)  # 2x650 rows
    quality_tokens: int = 300_000
    data_sentences: int = 1_000_000
    samples: int = 1000

    @classmethod
    def quick(cls) -> Plan:
        return cls(repeats=1, small_repeats=1, small=(12, 4), large=(6, 2), quality_tokens=5_000,
                   data_sentences=20_000, samples=50)  # fmt: skip


def out_dir() -> Path:
    return Path(os.environ.get("BENCH_OUT", "/tmp/rnnlm-bench"))


def section_ceiling(plan: Plan, overrides) -> list[Row]:
    from bench.ceiling import ceiling_rows

    return ceiling_rows(plan.repeats)


def section_train(plan: Plan, overrides, ceilings: dict[str, float]) -> list[Row]:
    from bench.train_throughput import measure

    cells, rows = ("rnn", "gru", "lstm"), []
    fp32, bf16 = ceilings.get("fp32"), ceilings.get("bf16")
    # The CPU goals: LSTM 2x200 at pytorch/examples' speed in fp32 and twice that in bf16; 2x650 at 70% MFU.
    small = (*plan.small, plan.small_repeats)
    rows += measure(["lstm"], 200, 2, "32-true", *small, overrides, context=True, ceiling=fp32,
                    goals={"rnnlm": (">=", 7100)})  # fmt: skip
    rows += measure(["rnn", "gru"], 200, 2, "32-true", *small, overrides, ceiling=fp32)
    rows += measure(["lstm"], 200, 2, "bf16-mixed", *small, overrides, context=True, ceiling=bf16,
                    goals={"rnnlm": (">=", 14000)})  # fmt: skip
    rows += measure(["rnn", "gru"], 200, 2, "bf16-mixed", *small, overrides, ceiling=bf16)
    rows += measure(cells, 650, 2, "32-true", *plan.large, plan.repeats, overrides, ceiling=fp32,
                    goals={"mfu": (">=", 70.0)})  # fmt: skip
    # The 7.1k and 14k goals are pytorch/examples' speed on this machine, and twice it: the same
    # comparison made against that recipe measured in this run, whatever the machine's load today.
    found = {r.key: r for r in rows}
    base = "train/cpu/lstm-2x200"
    stream = found[f"{base}/fp32/stream"]
    rows.append(ratio_row(f"{base}/fp32/rnnlm-vs-stream", "LSTM 2x200 fp32: rnnlm / pytorch/examples recipe",
                          found[f"{base}/fp32/rnnlm"], stream, (">=", 1.0)))  # fmt: skip
    rows.append(ratio_row(f"{base}/bf16/rnnlm-vs-fp32-stream", "LSTM 2x200: rnnlm bf16 / pytorch/examples recipe "
                          "fp32", found[f"{base}/bf16/rnnlm"], stream, (">=", 14000 / 7100)))  # fmt: skip
    return rows


def section_cells(plan: Plan, overrides, ceilings: dict[str, float]) -> list[Row]:
    from bench.cells import measure
    from rnnlm.precision import bf16_usable

    batches, warmup = (40, 8) if plan.repeats > 1 else (6, 1)
    rows = measure(repeats=plan.repeats, batches=batches, warmup=warmup, overrides=overrides,
                   ceiling=ceilings.get("fp32"))  # fmt: skip
    if plan.repeats > 1 and bf16_usable("cpu"):  # where bf16 is native the cells compare otherwise (docs/CELLS.md)
        rows += measure(windows=(35,), repeats=plan.repeats, batches=batches, warmup=warmup, overrides=overrides,
                        ceiling=ceilings.get("bf16"), precision="bf16-mixed")  # fmt: skip
    return rows


def section_cells_quality(plan: Plan, overrides) -> list[Row]:
    from bench.cells_quality import measure

    return measure(overrides=overrides) if plan.repeats > 1 else []  # an hour of training: never in a quick run


def section_quality(plan: Plan, overrides) -> list[Row]:
    from bench.quality import measure

    return measure(("rnn", "gru", "lstm"), plan.quality_tokens, overrides, save_dir=out_dir() / "models")


def section_stream_speed(plan: Plan, overrides) -> list[Row]:
    from bench.stream import measure_speed

    return measure_speed(quick=plan.repeats == 1, overrides=overrides)


def section_stream(plan: Plan, overrides) -> list[Row]:
    from bench.stream import measure

    return measure(quick=plan.repeats == 1, overrides=overrides)


def section_stream_slow(plan: Plan, overrides) -> list[Row]:
    from bench.stream import measure_slow

    return measure_slow(overrides)


def section_awd_speed(plan: Plan, overrides) -> list[Row]:
    from bench.awd import measure_speed

    return measure_speed(quick=plan.repeats == 1, overrides=overrides)


def section_budget(plan: Plan, overrides) -> list[Row]:
    from bench.awd import budget_rows

    return budget_rows(overrides) if plan.repeats > 1 else []  # hours of training: never in a quick run


def section_ablation(plan: Plan, overrides) -> list[Row]:
    from bench.awd import ablation_rows

    return ablation_rows(overrides=overrides) if plan.repeats > 1 else []


def section_generation(plan: Plan, overrides) -> list[Row]:
    from bench.generation import measure

    ckpt = out_dir() / "models" / "lstm.ckpt"  # the quality section's LSTM, when it ran first
    return measure(str(ckpt) if ckpt.exists() else None, plan.repeats, plan.samples, overrides=overrides)


def section_loss(plan: Plan, overrides) -> list[Row]:
    from bench.loss import measure

    return measure(plan.small_repeats, 20 if plan.small_repeats > 1 else 3)


def section_padding(plan: Plan, overrides) -> list[Row]:
    from bench.padding import measure

    return measure(overrides)


def section_data(plan: Plan, overrides) -> list[Row]:
    from bench.data_pipeline import measure, measure_scale

    rows = measure(plan.data_sentences, plan.repeats)
    return rows + (measure_scale() if plan.repeats > 1 else [])  # 10M and 100M tokens: minutes, never quick


def section_adaptive(plan: Plan, overrides) -> list[Row]:
    from bench.adaptive import measure

    own = [o for o in overrides if not o.startswith("data")]  # its own corpus: a 267k-word vocabulary
    return measure(overrides=own) if plan.repeats > 1 else measure(50_000, 4, 2, 1, own)


def section_gpu(plan: Plan, overrides) -> list[Row]:
    import torch

    from bench import gpu

    if not torch.cuda.is_available():
        print(gpu.SKIPPED, flush=True)
        return []
    return gpu.measure(repeats=plan.repeats, overrides=overrides,
                       sizes=((200, *plan.small), (650, *plan.large)))  # fmt: skip


SECTIONS: dict[str, Callable] = {
    "ceiling": section_ceiling, "train": section_train, "loss": section_loss, "quality": section_quality,
    "generation": section_generation, "padding": section_padding, "data": section_data, "gpu": section_gpu,
    "stream_speed": section_stream_speed, "stream": section_stream, "stream_slow": section_stream_slow,
    "awd_speed": section_awd_speed, "budget": section_budget, "ablation": section_ablation,
    "adaptive": section_adaptive, "cells": section_cells, "cells_quality": section_cells_quality,
}  # fmt: skip
# What `python -m bench` runs without --only: stream_slow (zaremba_small's 13 epochs, ~40 min here), budget,
# ablation and cells_quality (CPU recipes trained whole, one run each) only on request.
DEFAULT = [name for name in SECTIONS if name not in ("stream_slow", "budget", "ablation", "cells_quality")]


def run(names: list[str], plan: Plan, overrides, on_row: Callable[[Row], None] = lambda r: None) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        if name in ("train", "cells"):
            # MFU needs the ceiling: this run's, or one measured now if the ceiling section was not asked for
            found = [r for r in rows if r.key.startswith("ceiling/cpu/")] or section_ceiling(plan, overrides)
            new = SECTIONS[name](plan, overrides, {r.key.rsplit("-", 1)[1]: r.median for r in found})
        else:
            new = SECTIONS[name](plan, overrides)
        for row in new:
            on_row(row)
        rows += new
    return rows


def save_json(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in rows], indent=1))


def load_json(path: Path) -> list[Row]:
    return [Row(**{**r, "goal": tuple(r["goal"]) if r["goal"] else None}) for r in json.loads(path.read_text())]


# ---- the committed table --------------------------------------------------------------------------


def committed(doc: Path = DOC) -> dict[str, tuple[float, str]]:
    """key -> (median, the table line) from the results block of docs/BENCHMARKS.md."""
    text = doc.read_text() if doc.exists() else ""
    if BEGIN not in text:
        return {}
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    found = {}
    for line in block.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]  # escaped bars stay text
        if len(cells) < 6 or not line.startswith("| ") or cells[0] in ("key", "---"):
            continue
        found[cells[0]] = (float(re.sub(r"[*,]", "", cells[2])), line.strip())
    return found


def merged_lines(rows: list[Row], old: dict[str, tuple[float, str]]) -> list[str]:
    """The committed table with this run's rows in place: a measured row replaces its old line where it
    stood, a new one goes after the last line of its kind (`train/...`, `data/...`)."""
    new = {r.key: r.markdown() for r in rows}
    lines = [new.pop(key) if key in new else line for key, (_, line) in old.items()]
    for key, line in new.items():
        kind = f"| {key.split('/')[0]}/"
        after = [i for i, existing in enumerate(lines) if existing.startswith(kind)]
        lines.insert(after[-1] + 1 if after else len(lines), line)
    return lines


def write_doc(rows: list[Row], machine: str, command: str, doc: Path = DOC, merge: bool = True) -> None:
    """Put the rows in the results block; with `merge`, committed rows this run did not measure stay."""
    lines = merged_lines(rows, committed(doc)) if merge else [r.markdown() for r in rows]
    block = "\n".join([
        BEGIN, "",
        f"Written by `{command}` on {date.today().isoformat()}.", "",
        f"Machine: {machine}.", "",
        "Every figure is the median of the repeated runs, with their min-max spread; rows that a run",
        "with `--only` did not measure are kept from the run before. The commands, one section each:",
        "`python -m bench --only " + " | ".join(SECTIONS) + "`.", "",
        TABLE_HEADER, *lines, "", END,
    ])  # fmt: skip
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:  # first time: after the title and opening paragraph
        title, _, body = text.partition("\n\n")
        text = f"{title}\n\n{block}\n\n{body}"
    tmp = doc.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(doc)


def compare(rows: list[Row], doc: Path = DOC) -> list[str]:
    """One line per measured figure that is more than 10% worse than the committed table says."""
    old = committed(doc)
    worse = []
    for row in rows:
        if row.better is None or row.key not in old:
            continue
        before, now = old[row.key][0], row.median
        change = (now - before) / abs(before) if before else 0.0
        if (row.better == "higher" and change < -REGRESSION) or (row.better == "lower" and change > REGRESSION):
            worse.append(f"{row.key}: {before:g} -> {now:g} {row.unit} ({change:+.0%})")
    return worse
