"""Quality at a fixed budget: validation perplexity after the same training tokens, per cell, same seed.

    python -m bench.quality                         # rnn, gru, lstm at 2x200 fp32, + lstm bf16-mixed
    python -m bench.quality --tokens 100000 --cells lstm data.max_tokens=1024

Every run trains on the first batches of PTB's epoch 0 that hold --tokens target tokens (same seed, same
batching, so the very same batches for every cell), then validates on the whole validation split. A
speed change that alters the math shows up here as a different perplexity. These runs are deterministic
(same seed, same machine, same numbers), so each is run once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from omegaconf import open_dict

from bench.common import QUIET_RUN, TABLE_HEADER, Row, config, first_epoch, machine, move_overrides
from rnnlm.run.build import build


def run(cell: str, precision: str, tokens: int, overrides, save: Path | None = None) -> tuple[float, int, int]:
    """val/ppl after the first epoch-0 batches that hold `tokens` target tokens; the batches and tokens used."""
    cfg = config(f"model={cell}", f"trainer.precision={precision}", "trainer=cpu", *QUIET_RUN, *overrides)
    lengths, epoch = first_epoch(cfg)
    per_batch = np.array([int(lengths[b].sum()) for b in epoch])
    batches = min(int(np.searchsorted(per_batch.cumsum(), tokens)) + 1, len(per_batch))
    with open_dict(cfg):
        cfg.trainer.limit_train_batches = batches
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(save)
    return float(trainer.callback_metrics["val/ppl"]), batches, int(per_batch[:batches].sum())


def measure(cells=("rnn", "gru", "lstm"), tokens: int = 300_000, overrides=(), bf16_cells=("lstm",),
            save_dir: Path | None = None, other_seed: int | None = 1) -> list[Row]:  # fmt: skip
    """One val-ppl row per (cell, precision); the fp32 LSTM's model is saved to save_dir/lstm.ckpt."""
    rows = []
    runs = [(cell, "32-true") for cell in cells] + [(cell, "bf16-mixed") for cell in bf16_cells]
    for cell, precision in runs:
        prec = "fp32" if precision == "32-true" else "bf16"
        save = save_dir / f"{cell}.ckpt" if save_dir is not None and prec == "fp32" else None
        ppl, batches, used = run(cell, precision, tokens, overrides, save)
        rows.append(Row(f"quality/{cell}-2x200/{prec}/val-ppl",
                        f"{cell.upper()} 2x200 {prec}: val ppl after {used:,} training tokens ({batches} batches)",
                        [ppl], "ppl", "lower"))  # fmt: skip
    if other_seed:
        # What another seed alone changes: the yardstick for "bf16 leaves perplexity unchanged".
        cell = bf16_cells[0] if bf16_cells else cells[-1]
        ppl, batches, used = run(cell, "32-true", tokens, [*overrides, f"seed={other_seed}"])
        rows.append(Row(f"quality/{cell}-2x200/fp32/val-ppl-seed-{other_seed}",
                        f"{cell.upper()} 2x200 fp32, seed={other_seed}: val ppl after {used:,} training tokens",
                        [ppl], "ppl", "lower"))  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    ap.add_argument("--bf16-cells", nargs="*", default=["lstm"])
    ap.add_argument("--tokens", type=int, default=300_000, help="training target tokens before validating")
    ap.add_argument("overrides", nargs="*", help="extra train.py overrides")
    args = ap.parse_args()
    args.cells = move_overrides(args.cells, args.overrides)
    args.bf16_cells = move_overrides(args.bf16_cells, args.overrides)
    print(f"machine: {machine()}\n\n{TABLE_HEADER}")
    for row in measure(args.cells, args.tokens, args.overrides, args.bf16_cells):
        print(row.markdown())


if __name__ == "__main__":
    main()
