"""The hardware's ceiling: matrix-product GFLOP/s in fp32 and bf16, and a model's FLOPs per token.

    python -m bench.ceiling

A training row's model-FLOPs utilisation (MFU) = target tokens/s x training FLOPs per token / this
ceiling: how much of what the machine can do goes into the model's own arithmetic.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from bench.common import TABLE_HEADER, Row, machine

GATES = {"rnn": 1, "vanilla": 1, "gru": 3, "lstm": 4}


def matmul_gflops(dtype: torch.dtype, size: int = 2048, seconds: float = 1.0, device: str = "cpu") -> float:
    """GFLOP/s of square products, timed over about `seconds` after a warm-up product."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    a @ b
    sync()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        sync()
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def ceiling_rows(repeats: int, device: str = "cpu", seconds: float = 1.0) -> list[Row]:
    where = "GPU" if device == "cuda" else "CPU"
    rows = []
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        values = [matmul_gflops(dtype, device=device, seconds=seconds) for _ in range(repeats)]
        rows.append(Row(f"ceiling/{device}/matmul-{name}", f"{where} {name} 2048x2048 matrix product", values,
                        "GFLOP/s", "higher"))  # fmt: skip
    return rows


def training_flops_per_token(
    cell: str, embed_size: int, hidden_size: int | Sequence[int], num_layers: int, vocab_size: int,
    linear_hidden_sizes: Sequence[int] = (), **_: object,
) -> float:  # fmt: skip
    """Matrix-product FLOPs of one training token: forward x 3 (the backward does two products per one).

    Counts the recurrent layers (gates x 2 x hidden x (input + hidden)), the MLP head and the output
    layer (2 x width x vocabulary); element-wise work (activations, softmax, dropout) is left out.
    """
    forward, width = 0, embed_size
    for size in [hidden_size] * num_layers if isinstance(hidden_size, int) else hidden_size:
        forward += GATES[cell] * 2 * size * (width + size)
        width = size
    for size in linear_hidden_sizes:
        forward += 2 * width * size
        width = size
    forward += 2 * width * vocab_size
    return 3.0 * forward


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}")
    for row in ceiling_rows(args.repeats):
        print(row.markdown())
    for h in (200, 650):
        mflop = training_flops_per_token("lstm", h, h, 2, 10002) / 1e6
        print(f"\nLSTM 2x{h}, 10,002-word vocabulary: {mflop:.1f} MFLOP per training token")


if __name__ == "__main__":
    main()
