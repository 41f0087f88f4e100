"""GPU rows: the training rows on the GPU in fp32 and bf16-mixed, against cuDNN's own LSTM as the ceiling.

    python -m bench.gpu               # prints a message and nothing else without a CUDA GPU

The ceiling is the raw cuDNN throughput of the same nn.LSTM (same sizes, same batch shapes), forward +
backward alone, with no embedding, output layer, loss or optimizer; rnnlm / ceiling says how close the
whole training step gets to the recurrent part's own speed.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from bench import train_throughput
from bench.ceiling import ceiling_rows
from bench.common import TABLE_HEADER, Row, machine, ratio_row
from rnnlm.training.build import build

SKIPPED = "GPU rows skipped: no CUDA GPU is visible (torch.cuda.is_available() is false)."


def rnn_ceiling(cfg, batches, warmup: int, bf16: bool, device: str) -> float:
    """Target tokens/s of the model's recurrent layers alone (cuDNN on a GPU), forward + backward."""
    m = cfg.model
    kind = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[m.cell]
    rnn = kind(m.embed_size, m.hidden_size, m.num_layers, batch_first=True, dropout=m.dropout).to(device)
    tokens, start = 0, 0.0
    for i, b in enumerate(batches):
        if i == warmup:
            train_throughput._sync(device)
            tokens, start = 0, time.perf_counter()
        x = torch.randn(*b.inputs.shape, m.embed_size, device=device)
        with train_throughput._autocast(device, bf16):
            out, _ = rnn(x)
        out.float().sum().backward()
        tokens += b.num_tokens
    train_throughput._sync(device)
    return tokens / (time.perf_counter() - start)


def measure(cells=("rnn", "gru", "lstm"), sizes=((200, 140, 20), (650, 140, 20)), repeats: int = 3,
            overrides=(), device: str = "cuda") -> list[Row]:  # fmt: skip
    """sizes: (hidden, batches, warm-up batches) per model size."""
    rows = ceiling_rows(repeats, device)
    for precision, prec in (("32-true", "fp32"), ("bf16-mixed", "bf16")):
        ceiling = next(r for r in rows if r.key.endswith(prec)).median
        for hidden, batches, warmup in sizes:
            trained = train_throughput.measure(cells, hidden, 2, precision, batches, warmup, repeats, overrides,
                                               device=device, ceiling=ceiling)  # fmt: skip
            rows += trained
            for cell in cells:
                cfg = train_throughput.train_config(cell, hidden, 2, precision, batches, overrides, device)
                datamodule, _, _ = build(cfg)
                data = list(datamodule.train_dataloader())[:batches]
                base = f"train/{device}/{cell}-2x{hidden}/{prec}"
                what = f"{cell.upper()} 2x{hidden} {prec}: the {cell} layers alone (cuDNN), forward+backward"
                values = [rnn_ceiling(cfg, data, warmup, prec == "bf16", device) for _ in range(repeats)]
                ceiling_row = Row(f"{base}/rnn-ceiling", what, values, "tokens/s", "higher")
                rnnlm = next(r for r in trained if r.key == f"{base}/rnnlm")
                ratio = ratio_row(f"{base}/rnnlm-vs-rnn-ceiling", f"{cell.upper()} 2x{hidden} {prec}: rnnlm / "
                                  "recurrent layers alone", rnnlm, ceiling_row, (">=", 0.9))  # fmt: skip
                rows += [ceiling_row, ratio]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(SKIPPED)
        return
    print(f"machine: {machine()}\n\n{TABLE_HEADER}")
    for row in measure(repeats=args.repeats, overrides=args.overrides):
        print(row.markdown())


if __name__ == "__main__":
    main()
