"""The cells' PTB quality at equal size and equal time: each cell at the tied 2x200 LSTM's parameter count
(model.params), trained by the ptb_cpu_18min recipe for the wall time the LSTM takes for its 7 epochs.

    python -m bench.cells_quality                  # the LSTM and the four new cells (about 70 min on 2 cores)
    python -m bench.cells_quality --cells lstm mingru --jobs 1

1. Speed: each cell's training tokens/s in the recipe's own settings (stream windows of 35 over 20 columns, its
   precision), interleaved with the LSTM's; a cell's epochs are 7 x its speed / the LSTM's, rounded (at least 1),
   with the recipe's schedule scaled to them (the lr kept for the first 4/7 of the epochs, then halved each
   epoch; the last two epochs averaged).
2. Learning rate: a short search, a quarter epoch at each of --lrs (SGD, as the recipe), the best validation
   perplexity kept; where the best is the grid's edge, half or twice it is tried too (twice at most).
3. The run: train.py experiment=ptb_cpu_18min with those epochs and that rate; its stream-level test perplexity
   (the best validation checkpoint's). A run that diverges runs again at half the rate (twice at most).
Steps 2 and 3 train in processes of their own, --jobs at a time with the cores shared out: their results are
epochs', not seconds', so running two at once only finishes sooner. The speed ratios and every run already
finished in $BENCH_OUT/cells_quality/ are read, not measured or trained again (delete the folder to redo them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from bench.awd import train_point
from bench.cells import CELLS, corpus_tokenizer, lstm_budget, stream_config
from bench.common import TABLE_HEADER, Row, config, machine
from bench.suite import out_dir
from bench.train_throughput import framework_loop

RECIPE = "ptb_cpu_18min"
QUALITY_CELLS = ("lstm", "qrnn", "mogrifier", "mingru", "minlstm")  # the LSTM and the cells it is measured against
EPOCHS, KEEP = 7, 4  # the recipe's epochs, and those at the first learning rate


def speed_ratios(cells, budget: int, rounds: int, batches: int, warmup: int, overrides=()) -> dict[str, float]:
    """Each cell's training tokens/s over the LSTM's in the recipe's settings, rounds interleaved (medians);
    kept in $BENCH_OUT/cells_quality/speed.json, so a run stopped half-way trains the same epochs when resumed."""
    saved = out_dir() / "cells_quality" / "speed.json"
    known = json.loads(saved.read_text()) if saved.exists() else {}
    if all(c in known for c in cells):
        return {c: known[c] for c in cells}
    recipe = config(f"experiment={RECIPE}")
    settings = [f"trainer.precision={recipe.trainer.precision}", *overrides]
    runs = {c: stream_config(c, 35, budget, batches, settings) for c in dict.fromkeys(["lstm", *cells])}
    loops = {c: partial(framework_loop, cfg, warmup) for c, cfg in runs.items()}
    speeds: dict[str, list[float]] = {c: [] for c in loops}
    for _ in range(rounds):
        for c, loop in loops.items():
            speeds[c].append(loop())
    ratios = {c: statistics.median(a / b for a, b in zip(speeds[c], speeds["lstm"])) for c in cells}
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({**known, **ratios}, indent=1))
    return ratios


def train_all(stage: str, points: dict[str, tuple[str, ...]], jobs: int) -> dict[str, dict]:
    """Each point's train.py run of the recipe in $BENCH_OUT/cells_quality/STAGE/POINT, `jobs` at a time."""
    root = out_dir() / "cells_quality" / stage
    threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = {p: pool.submit(train_point, RECIPE, list(o), root / p, threads) for p, o in points.items()}
        return {p: _result(run, root / p) for p, run in runs.items()}


def _result(run, folder: Path) -> dict:
    """A run's metrics; one that diverged (train.py stops it, saying so) scores infinity instead of failing all."""
    try:
        return run.result()
    except RuntimeError:
        if "training diverged" not in (folder / "stdout.log").read_text():
            raise
        return {"val/ppl": math.inf, "test/ppl": math.inf, "epochs": None, "diverged": True}


def search_lrs(cells, sized: list[str], lrs, jobs: int, extend: int = 2) -> dict[str, float]:
    """Each cell's learning rate: a quarter epoch at each of `lrs`, the best validation perplexity kept; where
    the best is the grid's lowest (highest), half (twice) it is tried too, up to `extend` times."""
    tried: dict[str, dict[float, float]] = {c: {} for c in cells}
    todo = {c: list(lrs) for c in cells}
    for _ in range(extend + 1):
        points = {f"{c}-lr{lr:g}": (f"model={c}", *sized, f"optim.lr={lr:g}", "trainer.max_epochs=1",
                                    "trainer.limit_train_batches=0.25", "module.averaging.kind=none")
                  for c in todo for lr in todo[c]}  # fmt: skip
        got = train_all("lr-search", points, jobs)
        for c in todo:
            for lr in todo[c]:
                ppl = got[f"{c}-lr{lr:g}"]["val/ppl"]
                tried[c][lr] = ppl if math.isfinite(ppl) else math.inf  # diverged
        todo = {}
        for c in cells:
            best = min(tried[c], key=tried[c].get)
            edge = best / 2 if best == min(tried[c]) else best * 2 if best == max(tried[c]) else None
            if edge is not None:
                todo[c] = [edge]
        if not todo:
            break
    return {c: min(tried[c], key=tried[c].get) for c in cells}


def train_finals(cells, sized: list[str], lrs: dict[str, float], ratios: dict[str, float], jobs: int,
                 retries: int = 2) -> dict[str, dict]:  # fmt: skip
    """Each cell's run at its searched rate; one that diverges runs again at half the rate (`retries` times at
    most; a short search can favour a rate the whole run cannot keep). `lrs` is updated to the rates used."""
    got: dict[str, dict] = {}
    todo = {c: c for c in cells}  # cell -> its run's folder name
    for _ in range(retries + 1):
        points = {name: (f"model={c}", *sized, f"optim.lr={lrs[c]:g}", *schedule(ratios[c]))
                  for c, name in todo.items()}  # fmt: skip
        done = train_all("runs", points, jobs)
        got.update({c: done[name] for c, name in todo.items()})
        todo = {c: f"{c}-lr{lrs[c] / 2:g}" for c in todo if got[c].get("diverged")}
        if not todo:
            break
        for c in todo:
            lrs[c] /= 2
    return got


def schedule(ratio: float) -> list[str]:
    """The recipe's epochs and schedule scaled to a cell's speed (the same wall time as the LSTM's 7 epochs)."""
    epochs = max(1, round(EPOCHS * ratio))
    keep, averaged = max(1, round(epochs * KEEP / EPOCHS)), max(0, epochs - 2)
    return [f"trainer.max_epochs={epochs}", f"scheduler.keep_epochs={keep}", f"module.averaging.start_epoch={averaged}"]


def measure(cells=QUALITY_CELLS, lrs=(10, 20, 40), jobs: int = 2, rounds: int = 2, batches: int = 60, warmup: int = 10,
            overrides=()) -> list[Row]:  # fmt: skip
    vocab = corpus_tokenizer(overrides).get_vocab_size()
    budget = lstm_budget(vocab)
    sized = ["model.tie_weights=true", f"model.params={budget}", *overrides]
    ratios = speed_ratios(cells, budget, rounds, batches, warmup, overrides)
    best = search_lrs(cells, sized, lrs, jobs)
    got = train_finals(cells, sized, best, ratios, jobs)
    rows = []
    for c in cells:
        epochs = got[c]["epochs"] or 0
        what = f"{c} at {budget:,} parameters, {RECIPE}'s time ({epochs} epochs, lr {best[c]:g})"
        rows += [
            Row(f"quality/cells/{c}/test-ppl", f"{what}: stream-level test ppl", [got[c]["test/ppl"]], "ppl", "lower"),
            Row(f"quality/cells/{c}/speed-vs-lstm", f"{c}: training tokens/s / the LSTM's, {RECIPE}'s settings",
                [ratios[c]], "x", "higher"),
        ]  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=list(QUALITY_CELLS), help=f"of {', '.join(CELLS)}")
    ap.add_argument("--lrs", nargs="+", type=float, default=[10, 20, 40])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="speed rounds, each cell's run interleaved")
    ap.add_argument("--batches", type=int, default=60, help="batches per speed run, of which --warmup untimed")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("overrides", nargs="*", help="train.py overrides for every run")
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}")
    lrs = [int(x) if x == int(x) else x for x in args.lrs]
    for row in measure(args.cells, lrs, args.jobs, args.rounds, args.batches, args.warmup, args.overrides):
        print(row.markdown(), flush=True)


if __name__ == "__main__":
    main()
