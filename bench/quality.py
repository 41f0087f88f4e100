"""Quality at a fixed budget: validation perplexity after the same training tokens, per cell, same seed.

    python -m bench.quality                         # rnn, gru, lstm at 2x200 fp32, + lstm bf16-mixed
    python -m bench.quality --batches 200 --cells lstm

Every run trains on the very same first --batches batches of PTB's epoch 0 (same seed, same batching),
then validates on the whole validation split. A speed change that alters the math shows up here as a
different perplexity. These runs are deterministic (same seed, same machine, same numbers), so each is
run once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import TABLE_HEADER, Row, config, machine
from rnnlm.training import build


def run(cell: str, precision: str, batches: int, overrides, save: Path | None = None) -> tuple[float, int]:
    """val/ppl after `batches` training batches, and the target tokens those batches held."""
    cfg = config(
        f"model={cell}", f"trainer.precision={precision}", "trainer=cpu", "trainer.max_epochs=1",
        f"trainer.limit_train_batches={batches}", "trainer.enable_checkpointing=false",
        "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0", "+trainer.enable_model_summary=false",
        "logger=[]", "callbacks=[]", *overrides,
    )  # fmt: skip
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    tokens = sum(b.num_tokens for _, b in zip(range(batches), datamodule.train_dataloader(), strict=False))
    if save is not None:
        save.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(save)
    return float(trainer.callback_metrics["val/ppl"]), tokens


def measure(cells=("rnn", "gru", "lstm"), batches: int = 400, overrides=(), bf16_cells=("lstm",),
            save_dir: Path | None = None) -> list[Row]:  # fmt: skip
    """One val-ppl row per (cell, precision); the fp32 LSTM's model is saved to save_dir/lstm.ckpt."""
    rows = []
    runs = [(cell, "32-true") for cell in cells] + [(cell, "bf16-mixed") for cell in bf16_cells]
    for cell, precision in runs:
        prec = "fp32" if precision == "32-true" else "bf16"
        save = save_dir / f"{cell}.ckpt" if save_dir is not None and prec == "fp32" else None
        ppl, tokens = run(cell, precision, batches, overrides, save)
        rows.append(Row(f"quality/{cell}-2x200/{prec}/val-ppl",
                        f"{cell.upper()} 2x200 {prec}: val ppl after {tokens:,} training tokens ({batches} batches)",
                        [ppl], "ppl", "lower"))  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    ap.add_argument("--bf16-cells", nargs="*", default=["lstm"])
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("overrides", nargs="*", help="extra train.py overrides")
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}")
    for row in measure(args.cells, args.batches, args.overrides, args.bf16_cells):
        print(row.markdown())


if __name__ == "__main__":
    main()
