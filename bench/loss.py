"""The output layer + cross-entropy: rnnlm's fused function against torch 2.13's F.linear_cross_entropy.

    python -m bench.loss [--repeats 5] [--steps 20]

Forward + backward of the summed NLL over PTB's default batch shape (32 sentences of 22 words = 704
target tokens), 200-wide features, the 10,002-word vocabulary with a bias, in fp32 and under bf16
autocast: rnnlm/models/loss.py, torch's reference path (options=None: logits, then cross_entropy) and
torch's chunked path (options=LinearCrossEntropyOptions(), its own defaults for this device). Rounds
are interleaved, so each ratio compares two timings taken under the same machine load. The NLLs of the
three must agree (printed).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.common import TABLE_HEADER, Row, machine, ratio_row
from rnnlm.models.loss import linear_cross_entropy

TOKENS, WIDTH, VOCAB = 704, 200, 10002


def _impls() -> dict[str, Callable]:
    impls = {"rnnlm": lambda x, w, b, y: linear_cross_entropy(x, w, b, y, 0)}
    if hasattr(F, "linear_cross_entropy"):  # torch >= 2.13
        impls["torch"] = lambda x, w, b, y: F.linear_cross_entropy(
            x, w, y, linear_bias=b, reduction="sum", ignore_index=0
        )
        impls["torch-chunked"] = lambda x, w, b, y: F.linear_cross_entropy(
            x, w, y, linear_bias=b, reduction="sum", ignore_index=0, options=torch.nn.LinearCrossEntropyOptions()
        )
    return impls


def _time(fn: Callable, bf16: bool, steps: int) -> tuple[float, float]:
    """Median ms of forward + backward, and the NLL."""
    torch.manual_seed(0)
    x = (torch.randn(TOKENS, WIDTH) * 0.5).requires_grad_()
    w = (torch.randn(VOCAB, WIDTH) * 0.05).requires_grad_()
    b = torch.zeros(VOCAB, requires_grad=True)
    y = torch.randint(4, VOCAB, (TOKENS,))
    times, nll = [], 0.0
    for i in range(steps + 3):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = fn(x, w, b, y)
        loss.float().backward()
        if i >= 3:
            times.append((time.perf_counter() - t0) * 1e3)
        nll = float(loss.detach())
        x.grad = w.grad = b.grad = None
    return statistics.median(times), nll


def measure(repeats: int = 5, steps: int = 20) -> list[Row]:
    impls, rows = _impls(), []
    for bf16 in (False, True):
        prec = "bf16" if bf16 else "fp32"
        found: dict[str, Row] = {}
        for name in impls:
            what = f"output layer + loss fwd+bwd, 704 x 200 -> 10,002, {prec}: {name}"
            found[name] = Row(f"loss/cpu/{prec}/{name}", what, [], "ms", "lower")
        nlls: dict[str, float] = {}
        for _ in range(repeats):
            for name, fn in impls.items():
                ms, nlls[name] = _time(fn, bf16, steps)
                found[name].values.append(ms)
        print(f"{prec} summed NLL: " + ", ".join(f"{k} {v:.3f}" for k, v in nlls.items()), flush=True)
        rows += found.values()
        for name in impls:
            if name != "rnnlm":
                rows.append(ratio_row(f"loss/cpu/{prec}/{name}-vs-rnnlm", f"{prec}: {name} time / rnnlm time "
                                      "(above 1: rnnlm's is faster)", found[name], found["rnnlm"]))  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}")
    for row in measure(args.repeats, args.steps):
        print(row.markdown())


if __name__ == "__main__":
    main()
