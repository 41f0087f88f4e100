"""GPU rows: the training rows on the GPU in fp32 and bf16-mixed, against the two parts that must run anyway.

    python -m bench.gpu               # prints a message and nothing else without a CUDA GPU

The parts, each forward + backward alone on the same batch shapes: the recurrent layers (cuDNN's own
nn.LSTM / GRU / RNN of the same sizes) and the output layer with its loss (rnnlm's fused function over the
vocabulary). rnnlm / (layers + output layer), the time of a step against the time of the two parts one after
the other, says what the rest of the step costs (embedding, dropout, optimizer, framework): goal >= 0.9.
rnnlm / layers alone is shown too, with no goal: on a 10k vocabulary the output layer is 3/4 of the FLOPs.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from bench import train_throughput
from bench.ceiling import ceiling_rows
from bench.common import TABLE_HEADER, Row, machine, ratio_row
from rnnlm.models.loss import linear_cross_entropy
from rnnlm.run.build import build

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


def output_ceiling(cfg, batches, warmup: int, bf16: bool, device: str, vocab_size: int) -> float:
    """Target tokens/s of the output layer and its loss alone (rnnlm's fused function), forward + backward."""
    width = cfg.model.hidden_size if isinstance(cfg.model.hidden_size, int) else cfg.model.hidden_size[-1]
    decoder = nn.Linear(width, vocab_size).to(device)
    tokens, start = 0, 0.0
    for i, b in enumerate(batches):
        if i == warmup:
            train_throughput._sync(device)
            tokens, start = 0, time.perf_counter()
        features = torch.randn(b.targets.numel(), width, device=device, requires_grad=True)
        targets = b.targets.flatten().to(device)
        with train_throughput._autocast(device, bf16):
            loss = linear_cross_entropy(features, decoder.weight, decoder.bias, targets, -100)
        loss.backward()
        tokens += b.num_tokens
    train_throughput._sync(device)
    return tokens / (time.perf_counter() - start)


def one_after_the_other(layers: float, output: float) -> float:
    """Tokens/s of the recurrent layers, then the output layer, on each batch: their times add."""
    return 1 / (1 / layers + 1 / output)


def parts_rows(base: str, shape: str, rnnlm: Row, layers: list[float], output: list[float]) -> list[Row]:
    """The two parts' rows and rnnlm's ratios to them (the goal: against both, one after the other)."""
    both = [one_after_the_other(a, b) for a, b in zip(layers, output, strict=True)]
    layers_row = Row(f"{base}/rnn-ceiling", f"{shape}: the recurrent layers alone (cuDNN), forward+backward",
                     layers, "tokens/s", "higher")  # fmt: skip
    output_row = Row(f"{base}/output-layer", f"{shape}: the output layer and loss alone, forward+backward", output,
                     "tokens/s", "higher")  # fmt: skip
    both_row = Row(f"{base}/layers-and-output", f"{shape}: those two, one after the other", both, "tokens/s")
    return [layers_row, output_row, both_row,
            ratio_row(f"{base}/rnnlm-vs-rnn-ceiling", f"{shape}: rnnlm / recurrent layers alone", rnnlm, layers_row),
            ratio_row(f"{base}/rnnlm-vs-layers-and-output", f"{shape}: rnnlm / (layers + output layer)", rnnlm,
                      both_row, (">=", 0.9))]  # fmt: skip


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
                bf16, vocab = prec == "bf16", datamodule.vocab_size
                layers = [rnn_ceiling(cfg, data, warmup, bf16, device) for _ in range(repeats)]
                output = [output_ceiling(cfg, data, warmup, bf16, device, vocab) for _ in range(repeats)]
                rnnlm = next(r for r in trained if r.key == f"{base}/rnnlm")
                rows += parts_rows(base, f"{cell.upper()} 2x{hidden} {prec}", rnnlm, layers, output)
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
