"""Every cell's PTB quality at equal size and equal time, the one fair table (docs/CELLS.md): each cell at the
tied 2x200 LSTM's parameter count (model.params), trained by the ptb_cpu_18min recipe for the wall time the LSTM
takes for its 7 epochs; stream-level and sentence-level test perplexity, tokens/s, parameters, and the command
that trains each row.

    python -m bench.cells_quality                  # all eight cells (about 2 h 30 min on 2 cores)
    python -m bench.cells_quality --cells lstm transformer --lr lstm=20 --jobs 1

1. Speed: each cell's training tokens/s in the recipe's own settings (stream windows of 35 over 20 columns, its
   precision), interleaved with the LSTM's; a cell's epochs are 7 x its speed / the LSTM's, rounded (at least 1),
   with the recipe's schedule scaled to them (the lr kept for the first 4/7 of the epochs, then halved each
   epoch; the last two epochs averaged).
2. Learning rate: a short search, a quarter epoch at each of --lrs (SGD, as the recipe), the best validation
   perplexity kept; where the best is the grid's edge, half or twice it is tried too (twice at most). The
   Transformer trains with Adam and a warm-up instead (SGD at lr 20 does not train it): its search crosses
   Adam rates with two warm-up lengths, each a share of the run. --lr CELL=LR fixes a cell's rate, unsearched.
3. The run: train.py experiment=ptb_cpu_18min with those epochs and that rate; its stream-level test perplexity
   (the best validation checkpoint's), then eval.py of that checkpoint over the test sentences one by one
   (sentence-level: each read alone after an <eos>, its state reset). A run that diverges runs again at half
   the rate (twice at most).
Steps 2 and 3 train in processes of their own, --jobs at a time with the cores shared out: their results are
epochs', not seconds', so running two at once only finishes sooner. The speeds and every run already finished
in $BENCH_OUT/cells_quality/ are read, not measured or trained again (delete the folder to redo them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from bench.awd import ROOT, train_point
from bench.cells import corpus_tokenizer, lstm_budget, stream_config
from bench.common import TABLE_HEADER, Row, config, machine
from bench.suite import out_dir
from bench.train_throughput import framework_loop
from rnnlm.models.budget import count, fit_budget

RECIPE = "ptb_cpu_18min"
QUALITY_CELLS = ("rnn", "gru", "lstm", "qrnn", "mogrifier", "mingru", "minlstm", "transformer")
EPOCHS, KEEP = 7, 4  # the recipe's epochs, and those at the first learning rate
# Cells that train with Adam and a warm-up, not the recipe's SGD: the recipe's twin that does so (the same data,
# size, precision, clipping and averaging), the rates searched, and warm-ups as shares of the run.
# `given`: the warm-up share a rate fixed by --lr trains with (the one the 2026-12-07 search chose).
ADAM = {"transformer": {"recipe": "ptb_transformer_cpu_18min", "lrs": (1e-3, 2e-3, 4e-3), "warmups": (0.05, 0.2),
                        "given": 0.2}}  # fmt: skip


def speeds(cells, budget: int, rounds: int, batches: int, warmup: int, overrides=()) -> dict[str, float]:
    """Each cell's training tokens/s in the recipe's settings, rounds interleaved with the LSTM's (medians);
    kept in $BENCH_OUT/cells_quality/speed.json, so a run stopped half-way trains the same epochs when resumed."""
    saved = out_dir() / "cells_quality" / "speed.json"
    known = json.loads(saved.read_text()) if saved.exists() else {}
    wanted = list(dict.fromkeys(["lstm", *cells]))
    if all(c in known for c in wanted):
        return {c: known[c] for c in wanted}
    recipe = config(f"experiment={RECIPE}")
    settings = [f"trainer.precision={recipe.trainer.precision}", *overrides]
    loops = {c: partial(framework_loop, stream_config(c, 35, budget, batches, settings), warmup) for c in wanted}
    measured: dict[str, list[float]] = {c: [] for c in loops}
    for _ in range(rounds):
        for c, loop in loops.items():
            measured[c].append(loop())
    lstm = statistics.median(measured["lstm"])  # each cell's median ratio, at the LSTM's median speed
    got = {c: lstm * statistics.median(a / b for a, b in zip(measured[c], measured["lstm"])) for c in wanted}
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({**known, **got}, indent=1))
    return got


def train_all(stage: str, points: dict[str, tuple[str, ...]], jobs: int) -> dict[str, dict]:
    """Each point's train.py run of the recipe in $BENCH_OUT/cells_quality/STAGE/POINT, `jobs` at a time."""
    root = out_dir() / "cells_quality" / stage
    threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = {p: pool.submit(train_point, *_recipe(o), root / p, threads) for p, o in points.items()}
        return {p: _result(run, root / p) for p, run in runs.items()}


def _recipe(overrides) -> tuple[str, list[str]]:
    """A point's experiment (RECIPE unless an `experiment=` override names its twin) and its other overrides."""
    named = [o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")]
    return (named[0] if named else RECIPE), [o for o in overrides if not o.startswith("experiment=")]


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
    tried = tried_lrs(cells, sized, lrs, jobs, extend)
    return {c: min(tried[c], key=tried[c].get) for c in cells}


def tried_lrs(cells, sized: list[str], lrs, jobs: int, extend: int = 2, extra=None) -> dict[str, dict[float, float]]:
    """search_lrs's runs: each cell's validation perplexity at each rate tried. `extra`: a cell's own overrides
    and point-name tag, {cell: (overrides, tag)}."""
    extra = extra or {}
    tried: dict[str, dict[float, float]] = {c: {} for c in cells}
    todo = {c: list(lrs[c] if isinstance(lrs, dict) else lrs) for c in cells}
    name = {c: f"{c}{extra.get(c, ((), ''))[1]}" for c in cells}
    for _ in range(extend + 1):
        points = {f"{name[c]}-lr{lr:g}": (f"model={c}", *sized, *extra.get(c, ((), ""))[0], f"optim.lr={lr:g}",
                                          "trainer.max_epochs=1", "trainer.limit_train_batches=0.25",
                                          "module.averaging.kind=none")
                  for c in todo for lr in todo[c]}  # fmt: skip
        got = train_all("lr-search", points, jobs)
        for c in todo:
            for lr in todo[c]:
                ppl = got[f"{name[c]}-lr{lr:g}"]["val/ppl"]
                tried[c][lr] = ppl if math.isfinite(ppl) else math.inf  # diverged
        todo = {}
        for c in cells:
            best = min(tried[c], key=tried[c].get)
            edge = best / 2 if best == min(tried[c]) else best * 2 if best == max(tried[c]) else None
            if edge is not None:
                todo[c] = [edge]
        if not todo:
            break
    return tried


def search(cells, sized: list[str], lrs, jobs: int, steps: int) -> tuple[dict[str, float], dict[str, float]]:
    """Each cell's rate (search_lrs), and for the Adam cells a warm-up share too: the rates searched at each
    share, the pair with the best validation perplexity kept. `steps`: training windows per epoch."""
    sgd = [c for c in cells if c not in ADAM]
    best = search_lrs(sgd, sized, lrs, jobs) if sgd else {}
    shares: dict[str, float] = {}
    for c in (c for c in cells if c in ADAM):
        options = {}
        for share in ADAM[c]["warmups"]:
            run = (f"experiment={ADAM[c]['recipe']}", f"scheduler.warmup_steps={max(1, round(share * steps / 4))}")
            tried = tried_lrs([c], sized, {c: ADAM[c]["lrs"]}, jobs, extra={c: (run, f"-w{share:g}")})[c]
            options[share] = min((ppl, lr) for lr, ppl in tried.items())
        shares[c] = min(options, key=options.get)
        best[c] = options[shares[c]][1]
    return best, shares


def train_finals(cells, sized: list[str], lrs: dict[str, float], ratios: dict[str, float], jobs: int,
                 retries: int = 2, shares=None, steps: int = 0) -> dict[str, dict]:  # fmt: skip
    """Each cell's run at its searched rate; one that diverges runs again at half the rate (`retries` times at
    most; a short search can favour a rate the whole run cannot keep). `lrs` is updated to the rates used."""
    got: dict[str, dict] = {}
    todo = {c: c for c in cells}  # cell -> its run's folder name
    for _ in range(retries + 1):
        points = {name: final_overrides(c, sized, lrs[c], ratios[c], (shares or {}).get(c), steps)
                  for c, name in todo.items()}  # fmt: skip
        done = train_all("runs", points, jobs)
        got.update({c: {**done[name], "folder": name} for c, name in todo.items()})
        todo = {c: f"{c}-lr{lrs[c] / 2:g}" for c in todo if got[c].get("diverged")}
        if not todo:
            break
        for c in todo:
            lrs[c] /= 2
    return got


def final_overrides(cell: str, sized: list[str], lr: float, ratio: float, share: float | None, steps: int):
    """The train.py overrides of a cell's run: the recipe's epochs and schedule scaled to its speed (the same
    wall time as the LSTM's 7 epochs); an Adam cell's warm-up, `share` of its steps, then its cosine decay."""
    epochs = max(1, round(EPOCHS * ratio))
    run = [f"model={cell}", *sized, f"optim.lr={lr:g}", f"trainer.max_epochs={epochs}",
           f"module.averaging.start_epoch={max(0, epochs - 2)}"]  # fmt: skip
    if share is None:
        return (*run, f"scheduler.keep_epochs={max(1, round(epochs * KEEP / EPOCHS))}")
    return (
        f"experiment={ADAM[cell]['recipe']}",
        *run,
        f"scheduler.warmup_steps={max(1, round(share * steps * epochs))}",
    )


def sentence_level(run: str, folder: Path, precision: str) -> float:
    """eval.py of a finished run's best checkpoint over the test sentences one by one (sentence-level)."""
    done = folder / "results.json"
    if not done.exists():
        best = json.loads((out_dir() / "cells_quality" / "runs" / run / "results.json").read_text())["best_checkpoint"]
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={best}", "data.mode=sentences",
                   "splits=[test]", f"trainer.precision={precision}", f"hydra.run.dir={folder}"]  # fmt: skip
        with open(folder / "stdout.log", "w") as out:
            subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, check=True)
    return json.loads(done.read_text())["metrics"]["test/ppl"]


def windows_per_epoch(overrides=()) -> int:
    """Training windows (optimizer steps) per epoch of the recipe's stream."""
    from hydra.utils import instantiate

    cfg = config(f"experiment={RECIPE}", *overrides)
    datamodule = instantiate(cfg.data, tokenizer=dict(cfg.tokenizer))
    datamodule.prepare()
    return len(datamodule.train_dataloader())


def measure(cells=QUALITY_CELLS, lrs=(10, 20, 40), jobs: int = 2, rounds: int = 2, batches: int = 60, warmup: int = 10,
            overrides=(), fixed=None) -> list[Row]:  # fmt: skip
    fixed = dict(fixed or {})
    vocab = corpus_tokenizer(overrides).get_vocab_size()
    budget, steps = lstm_budget(vocab), windows_per_epoch(overrides)
    sized = ["model.tie_weights=true", f"model.params={budget}", *overrides]
    tokens = speeds(cells, budget, rounds, batches, warmup, overrides)
    ratios = {c: tokens[c] / tokens["lstm"] for c in cells}
    best, shares = search([c for c in cells if c not in fixed], sized, lrs, jobs, steps)
    best.update(fixed)
    shares.update({c: ADAM[c]["given"] for c in fixed if c in ADAM})
    got = train_finals(cells, sized, best, ratios, jobs, shares=shares, steps=steps)
    final = {c: final_overrides(c, sized, best[c], ratios[c], shares.get(c), steps) for c in cells}
    precision = config(f"experiment={RECIPE}").trainer.precision
    rows = []
    for c in cells:
        experiment, rest = _recipe(final[c])
        recipe = config(f"experiment={experiment}", *rest)
        params = count(fit_budget(dict(recipe.model), vocab), vocab)
        epochs = got[c]["epochs"] or 0
        what = f"{c} at {params:,} parameters, {RECIPE}'s time ({epochs} epochs, lr {best[c]:g})"
        sentences = sentence_level(got[c]["folder"], out_dir() / "cells_quality" / "sentences" / c, precision)
        rows += [
            Row(f"quality/cells/{c}/test-ppl", f"{what}: stream-level test ppl", [got[c]["test/ppl"]], "ppl", "lower"),
            Row(f"quality/cells/{c}/sentence-test-ppl", f"{c}: sentence-level test ppl (each sentence alone)",
                [sentences], "ppl", "lower"),
            Row(f"quality/cells/{c}/tokens-per-s", f"{c}: training tokens/s, {RECIPE}'s settings, alone",
                [tokens[c]], "tok/s", "higher"),
            Row(f"quality/cells/{c}/speed-vs-lstm", f"{c}: training tokens/s / the LSTM's", [ratios[c]], "x", "higher"),
        ]  # fmt: skip
        print(f"{c}: python train.py experiment={experiment} {' '.join(rest)}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=list(QUALITY_CELLS), help=f"of {', '.join(QUALITY_CELLS)}")
    ap.add_argument("--lrs", nargs="+", type=float, default=[10, 20, 40], help="the SGD cells' search grid")
    ap.add_argument("--lr", nargs="+", default=[], metavar="CELL=LR", help="a cell's rate, given: not searched")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="speed rounds, each cell's run interleaved")
    ap.add_argument("--batches", type=int, default=60, help="batches per speed run, of which --warmup untimed")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("overrides", nargs="*", help="train.py overrides for every run")
    args = ap.parse_args()
    fixed = {cell: float(lr) for cell, lr in (item.split("=", 1) for item in args.lr)}
    print(f"machine: {machine()}\n")
    lrs = [int(x) if x == int(x) else x for x in args.lrs]
    rows = measure(args.cells, lrs, args.jobs, args.rounds, args.batches, args.warmup, args.overrides, fixed)
    print(f"\n{TABLE_HEADER}")
    for row in rows:
        print(row.markdown(), flush=True)


if __name__ == "__main__":
    main()
