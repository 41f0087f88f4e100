"""fp32 against bf16-mixed at the same number of training steps: tokens/s and the validation perplexity.

    python -m bench.precision                       # LSTM 2x200, one epoch of PTB each, same seed
    python -m bench.precision --batches 400 model=gru

bf16-mixed autocasts the matrix products (embedding lookups stay fp32, the loss is computed in fp32);
this shows what it buys in speed and whether it costs perplexity.
"""

from __future__ import annotations

import argparse

from bench.common import config, machine
from rnnlm.callbacks import TokenThroughput
from rnnlm.training import build


def run(precision: str, batches: str, overrides: list[str]) -> tuple[float, float]:
    cfg = config(
        f"trainer.precision={precision}", "trainer.max_epochs=1", f"trainer.limit_train_batches={batches}",
        "trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false", "trainer.num_sanity_val_steps=0",
        "logger=[]", "callbacks=[]", *overrides,
    )  # fmt: skip
    datamodule, module, trainer = build(cfg)
    trainer.callbacks.append(TokenThroughput(prog_bar=False))
    trainer.fit(module, datamodule=datamodule)
    m = trainer.callback_metrics
    return float(m["train/tokens_per_sec"]), float(m["val/ppl"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1.0", help="training batches (int) or fraction of an epoch (float)")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    rows = [(p, *run(p, args.batches, args.overrides)) for p in ("32-true", "bf16-mixed")]
    print(f"\nsame seed, same batches ({args.batches} of an epoch), {' '.join(args.overrides) or 'defaults'}")
    print("| precision | train tokens/s | val/ppl after the same steps |")
    print("|---|---|---|")
    for p, rate, ppl in rows:
        print(f"| {p} | {rate:,.0f} | {ppl:.2f} |")
    print(f"\nbf16-mixed / fp32 speed: {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
