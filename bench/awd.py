"""AWD-LSTM's parts and the CPU budget recipes (Penn Treebank test perplexity, stream-level unless named _sentences).

    python -m bench --only awd_speed   # ~10 min here: what weight drop, bf16, torch.compile and larger batches cost
    python -m bench --only budget      # the time budgets, then each ptb_cpu_* recipe trained and tested (~3 h)
    python -m bench --only ablation    # the budget recipe with each regulariser switched off in turn
    python -m bench.awd --part ablation --jobs 2   # the same, two runs at a time (one thread each), resumable
    python -m bench.awd --part ablation --done     # the points finished so far, nothing trained
    python -m bench.awd --part speed|budget|ablation [--quick] [--recipe NAME] [--jobs N]   # one part, printed only

Rows:
  train/cpu/awd/<variant>            tokens/s of train.py's path, interleaved rounds, windows of bptt 35:
                                     the tied 2x200 with locked dropout, without and with weight drop (0.5), in
                                     bf16, compiled, and with 64 columns
  train/cpu/awd/weight-drop-vs-none  weight drop's cost (goal: >= 0.85, at most 15% fewer tokens/s)
  train/cpu/awd/bf16-vs-fp32-peer    the bf16 recipe against pytorch/examples' recipe in fp32 (goal 1.97)
  cost/awd_lstm_ptb/...              AWD-LSTM's PTB recipe: tokens/s here over 60 windows, minutes an epoch, FLOPs
  budget/examples-{6,40}ep-minutes   the budgets: pytorch/examples' 6- and 40-epoch recipes here, from its plain
                                     loop's tokens/s (bench.stream.examples_epoch) and its evaluation time
  quality/budget/<recipe>/test-ppl   the recipe trained (train.py's run), the best validation checkpoint tested
  quality/budget/<recipe>/minutes    its fit time, against its budget (ptb_cpu_18min: 6 epochs; the 75min: 40)
  quality/ablation/<recipe>/without-<part>  the same without one part (the paper's Table 4, at small scale)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from bench.common import QUIET_RUN, TABLE_HEADER, Row, config, machine, ratio_row
from bench.stream import PTB_TRAIN_TOKENS, RECIPE_RUN, cost_rows, recipe
from bench.train_throughput import framework_loop
from rnnlm.run.build import build

ROOT = Path(__file__).resolve().parent.parent  # train.py's folder
BASE = ("experiment=ptb_stream_small_tied", "model.locked_dropout=true")
VARIANTS = {  # name: (what, overrides)
    "fp32-peer": ("pytorch/examples' recipe (ptb_stream_small), fp32", ("experiment=ptb_stream_small",)),
    "locked": ("tied 2x200, locked dropout, fp32", BASE),
    "weight-drop": ("the same with weight drop 0.5", (*BASE, "model.weight_drop=0.5")),
    "bf16": ("the same with weight drop, bf16-mixed", (*BASE, "model.weight_drop=0.5", "trainer.precision=bf16-mixed")),
    "batch64": ("weight drop, bf16, 64 columns", (*BASE, "model.weight_drop=0.5", "trainer.precision=bf16-mixed",
                                                  "data.batch_size=64")),
}  # fmt: skip
COMPILED = ("weight drop, bf16, module.compile=true", (*BASE, "model.weight_drop=0.5", "trainer.precision=bf16-mixed",
                                                      "module.compile=true"))  # fmt: skip
# recipe: (the budget, in pytorch/examples' epochs here; goal: test ppl at most). The _sentences recipe is scored
# sentence by sentence (the default mode), the others as one stream.
BUDGET_RECIPES = {"ptb_cpu_18min": (6, 100.0), "ptb_cpu_75min": (40, 80.0), "ptb_cpu_75min_sentences": (40, 100.0)}
# The paper's Table 4 at small scale: the budget recipe with one part switched off at a time.
ABLATION = {
    "weight-drop": ("model.weight_drop=0",),
    "averaging": ("module.averaging.kind=none",),
    "embedding-dropout": ("model.dropout_embed=0",),
    "weight-decay": ("optim.weight_decay=0",),
    "ar-tar": ("module.ar=0", "module.tar=0"),
    "variable-bptt": ("data.variable_bptt=false",),
    "locked-dropout": ("model.locked_dropout=false",),
}


def speed_config(overrides, batches: int):
    limits = (*QUIET_RUN, "trainer=cpu", f"trainer.limit_train_batches={batches}", "trainer.limit_val_batches=0",
              "~scheduler", "data.variable_bptt=false")  # fmt: skip
    return config(*overrides, *limits)


def speed_rows(batches: int, warmup: int, repeats: int, compile_warmup: int, overrides=()) -> list[Row]:
    runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(repeats):  # interleaved: the machine's load hits every variant alike
        for name, (_, variant) in VARIANTS.items():
            runs[name].append(framework_loop(speed_config([*variant, *overrides], batches), warmup))
    rows = {k: Row(f"train/cpu/awd/{k}", VARIANTS[k][0], v, "tokens/s", "higher") for k, v in runs.items()}
    ratios = [
        ratio_row("train/cpu/awd/weight-drop-vs-none", "weight drop 0.5 / without (tokens/s, same model)",
                  rows["weight-drop"], rows["locked"], (">=", 0.85)),
        ratio_row("train/cpu/awd/bf16-vs-fp32-peer", "bf16 recipe / pytorch/examples' recipe in fp32 (tokens/s)",
                  rows["bf16"], rows["fp32-peer"], (">=", 1.97)),
    ]  # fmt: skip
    if not compile_warmup:
        return [*rows.values(), *ratios]
    # Compiling takes minutes: one longer run, after the others, warmed up past the compilations.
    compiled = framework_loop(speed_config([*COMPILED[1], *overrides], batches + compile_warmup), compile_warmup)
    median_bf16 = sorted(rows["bf16"].values)[len(rows["bf16"].values) // 2]
    return [
        *rows.values(), *ratios,
        Row("train/cpu/awd/compiled", COMPILED[0], [compiled], "tokens/s", "higher"),
        Row("train/cpu/awd/compiled-vs-eager", "module.compile=true / eager, weight drop + bf16 (one run each)",
            [compiled / median_bf16], "x", "higher"),
    ]  # fmt: skip


def budget_minutes(windows: int, overrides=()) -> tuple[dict[int, float], str]:
    """pytorch/examples' run here for each budget in BUDGET_RECIPES (6 and 40 epochs): its plain loop's training
    tokens/s over `windows` windows, plus the time of its evaluations (validation each epoch, one test)."""
    from bench.stream import examples_epoch

    cfg = config("experiment=ptb_stream_small", "trainer=cpu", *overrides)
    datamodule, _, _ = build(cfg)
    info: dict = {}
    _, speed = examples_epoch(datamodule, max_windows=windows, timings=info)
    epochs = sorted({e for e, _ in BUDGET_RECIPES.values()})
    minutes = {e: (e * (PTB_TRAIN_TOKENS / speed + info["eval_s"]) + info["eval_s"]) / 60 for e in epochs}
    return minutes, f"{speed:,.0f} tokens/s over {windows} windows, {info['eval_s']:.0f} s a validation"


def budget_rows(overrides=(), names=None) -> list[Row]:
    """The budgets, then each recipe (all of BUDGET_RECIPES, or `names`) trained, tested and timed against its own."""
    minutes, how = budget_minutes(300, overrides)
    rows = [Row(f"budget/examples-{e}ep-minutes", f"pytorch/examples' {e} epochs here ({how})", [m], "min", "lower")
            for e, m in minutes.items()]  # fmt: skip
    for name in names or BUDGET_RECIPES:
        epochs, goal = BUDGET_RECIPES[name]
        got = recipe(name, *overrides)
        level = "sentence" if name.endswith("_sentences") else "stream"
        rows += [
            Row(f"quality/budget/{name}/test-ppl", f"experiment={name}: {level}-level test ppl", [got["test/ppl"]],
                "ppl", "lower", ("<=", goal)),
            Row(f"quality/budget/{name}/minutes", f"experiment={name}: fit time here ({got['epochs']} epochs; "
                f"budget: pytorch/examples' {epochs} epochs)", [got["fit_s"] / 60], "min", "lower",
                ("<=", round(minutes[epochs], 1))),
        ]  # fmt: skip
    return rows


def ablation_rows(name: str = "ptb_cpu_75min", overrides=(), jobs: int = 1, done_only: bool = False) -> list[Row]:
    """The recipe whole, then without each part in ABLATION: one train.py run each, `jobs` at a time
    (`done_only`: the rows of the points already finished, none trained)."""
    cfg = config(f"experiment={name}", *overrides)
    points = {"all": ()}
    for part, off in ABLATION.items():
        if not all(_same(OmegaConf.select(cfg, k), v) for k, v in (o.split("=") for o in off)):
            points[part] = off  # parts the recipe does not use are left out
    got = train_points(name, points, overrides, jobs, done_only)
    full = got["all"]["test/ppl"] if "all" in got else None
    threads = sorted({str(g["threads"]) for g in got.values() if g.get("threads")})
    how = f"; runs of {'/'.join(threads)} torch thread(s)" if threads else ""
    rows = []
    if full is not None:
        rows.append(Row(f"quality/ablation/{name}/all", f"experiment={name}: stream-level test ppl (the same epochs "
                        f"each{how})", [full], "ppl", "lower"))  # fmt: skip
    for part, off in list(points.items())[1:]:
        if part not in got:
            continue
        rows.append(Row(f"quality/ablation/{name}/without-{part}", f"{name} without {part} ({' '.join(off)})",
                        [got[part]["test/ppl"]], "ppl", "lower"))  # fmt: skip
        if full is not None:
            rows.append(Row(f"quality/ablation/{name}/without-{part}-delta", f"{name}: test ppl change without "
                            f"{part}", [got[part]["test/ppl"] - full], "ppl"))  # fmt: skip
    return rows


def train_points(
    name: str, points: dict[str, tuple[str, ...]], overrides=(), jobs: int = 1, done_only: bool = False
) -> dict[str, dict]:
    """Each point's `python train.py experiment=NAME <its overrides>` in a process and folder of its own
    ($BENCH_OUT/ablation/NAME/POINT), `jobs` at a time with the cores shared out (two one-thread runs do ~1.4x the
    work of one two-thread run on 2 cores; the numbers are epochs', not minutes'). A point whose folder holds a
    results.json of the same overrides is read, not trained again, and one cut off resumes from its last
    checkpoint (train.py resumes a run in its own folder), so an ablation stopped half-way goes on from there.
    `done_only`: only the points already finished, read."""
    from concurrent.futures import ThreadPoolExecutor

    root = Path(os.environ.get("BENCH_OUT", "/tmp/rnnlm-bench"), "ablation", name)
    if done_only:
        points = {p: off for p, off in points.items() if (root / p / "results.json").exists()}
    threads = max(1, len(os.sched_getaffinity(0)) // jobs)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = {p: pool.submit(train_point, name, [*off, *overrides], root / p, threads) for p, off in points.items()}
        return {p: run.result() for p, run in runs.items()}


def train_point(name: str, overrides: list[str], folder: Path, threads: int) -> dict:
    """One recipe run as train.py, in `folder`: its metrics (test/ppl of the best validation checkpoint)."""
    done = folder / "results.json"
    command = [sys.executable, str(ROOT / "train.py"), f"experiment={name}", *RECIPE_RUN, *overrides,
               f"hydra.run.dir={folder}"]  # fmt: skip
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        with open(folder / "stdout.log", "a") as out:
            started = time.strftime("%Y-%m-%d %H:%M")
            print(f"$ {' '.join(command)}  # {threads} threads, {started}", file=out, flush=True)
            failed = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode
        if failed or not done.exists():
            raise RuntimeError(f"{' '.join(command)} failed (exit {failed}): see {folder / 'stdout.log'}")
    results = json.loads(done.read_text())
    if results["overrides"] != command[2:-1]:
        raise RuntimeError(f"{done} is a run of other overrides ({results['overrides']}): delete {folder} to redo it")
    ran = (
        re.findall(r"# (\d+) threads", (folder / "stdout.log").read_text()) if (folder / "stdout.log").exists() else []
    )
    return {**results["metrics"], "epochs": results["epochs"], "wall_time_s": results["wall_time_s"],
            "threads": int(ran[-1]) if ran else None}  # fmt: skip


def _same(value, override: str) -> bool:
    """A config value equals an override's text (0 and 0.0, false and False alike)."""
    try:
        return float(value) == float(override)
    except (TypeError, ValueError):
        return str(value).lower() == override.lower()


def measure_speed(quick: bool = False, overrides=()) -> list[Row]:
    if quick:
        return speed_rows(4, 2, 1, 0, [*overrides, "data.bptt=5"])  # no compiling: minutes
    # AWD-LSTM's GPU recipe here: its tokens/s over 60 of its windows (~4 min), for its cost per epoch.
    return [*speed_rows(100, 20, 3, 60, overrides), *cost_rows("awd_lstm_ptb", 60, 10, overrides)]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", choices=["speed", "budget", "ablation"], default="speed")
    ap.add_argument(
        "--recipe",
        action="append",
        choices=sorted(BUDGET_RECIPES),
        help="budget: train only this recipe (repeatable); ablation: the recipe ablated",
    )
    ap.add_argument("--jobs", type=int, default=1, help="ablation: runs at a time (the cores shared out)")
    ap.add_argument("--done", action="store_true", help="ablation: print the points already finished, train none")
    return ap.parse_args(argv)


def main() -> None:
    args = parse()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}", flush=True)
    parts = {
        "speed": lambda: measure_speed(args.quick),
        "budget": lambda: budget_rows(names=args.recipe),
        "ablation": lambda: ablation_rows(*(args.recipe or [])[:1], jobs=args.jobs, done_only=args.done),
    }
    rows = parts[args.part]()
    for row in rows:
        print(row.markdown(), flush=True)


if __name__ == "__main__":
    main()
