"""AWD-LSTM's parts and the CPU budget recipes (Penn Treebank test perplexity, stream-level unless named _sentences).

    python -m bench --only awd_speed   # ~10 min here: what weight drop, bf16, torch.compile and larger batches cost
    python -m bench --only budget      # the time budgets, then each ptb_cpu_* recipe trained and tested (~3 h)
    python -m bench --only ablation    # the budget recipe with each regulariser switched off in turn
    python -m bench.awd --part speed|budget|ablation [--quick] [--recipe NAME]   # one part, printed, not written

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

from omegaconf import OmegaConf

from bench.common import QUIET_RUN, TABLE_HEADER, Row, config, machine, ratio_row
from bench.stream import PTB_TRAIN_TOKENS, cost_rows, recipe
from bench.train_throughput import framework_loop
from rnnlm.training.build import build

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


def ablation_rows(name: str = "ptb_cpu_75min", overrides=()) -> list[Row]:
    """The recipe whole, then without each part in ABLATION (one training run each)."""
    cfg = config(f"experiment={name}", *overrides)
    full = recipe(name, *overrides)["test/ppl"]
    rows = [Row(f"quality/ablation/{name}/all", f"experiment={name}: stream-level test ppl", [full], "ppl", "lower")]
    for part, off in ABLATION.items():
        if all(_same(OmegaConf.select(cfg, k), v) for k, v in (o.split("=") for o in off)):
            continue  # the recipe does not use this part
        got = recipe(name, *off, *overrides)["test/ppl"]
        rows += [
            Row(f"quality/ablation/{name}/without-{part}", f"{name} without {part} ({' '.join(off)})", [got], "ppl",
                "lower"),
            Row(f"quality/ablation/{name}/without-{part}-delta", f"{name}: test ppl change without {part}",
                [got - full], "ppl"),
        ]  # fmt: skip
    return rows


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", choices=["speed", "budget", "ablation"], default="speed")
    ap.add_argument(
        "--recipe",
        action="append",
        choices=sorted(BUDGET_RECIPES),
        help="budget: train only this recipe (repeatable); ablation: the recipe ablated",
    )
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}", flush=True)
    parts = {
        "speed": lambda: measure_speed(args.quick),
        "budget": lambda: budget_rows(names=args.recipe),
        "ablation": lambda: ablation_rows(*(args.recipe or [])[:1]),
    }
    rows = parts[args.part]()
    for row in rows:
        print(row.markdown(), flush=True)


if __name__ == "__main__":
    main()
