"""The linear recurrence h_t = a_t h_{t-1} + b_t over a training window, three ways (rnnlm.models.cells.scan):

    python -m bench.scan                       # batch 20, window 70, width 241 (minGRU at the 2x200 LSTM's size)
    python -m bench.scan --window 35 --width 1150

  stepped    one fused multiply-add per step, backward written out (what a CPU runs)
  doubling   log2(T) rounds of whole-window ops, autograd's backward (what a GPU runs)
  log-space  Feng et al.'s cumsum + logcumsumexp (b > 0 only), autograd's backward
Each: forward + backward milliseconds (median of --repeats rounds of 20, interleaved) and the largest difference
from an fp64 step-by-step reference, relative to its largest value.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.common import machine
from rnnlm.models.cells.scan import Stepped, doubling_scan


def log_space(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    decay = torch.cumsum(torch.log(a), dim=1)
    summed = torch.logaddexp(torch.logcumsumexp(torch.log(b) - decay, dim=1), torch.log(h0)[:, None])
    return torch.exp(decay + summed)


def reference(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    h, out = h0.double(), []
    for t in range(a.shape[1]):
        h = a[:, t].double() * h + b[:, t].double()
        out.append(h)
    return torch.stack(out, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--window", type=int, default=70)
    ap.add_argument("--width", type=int, default=241)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    shape = (args.batch, args.window, args.width)
    a, b = torch.rand(shape).requires_grad_(), torch.rand(shape).requires_grad_()  # b > 0: log space needs it
    h0 = torch.rand(args.batch, args.width)
    exact = reference(a.detach(), b.detach(), h0)
    forms = {"stepped": Stepped.apply, "doubling": doubling_scan, "log-space": log_space}
    times: dict[str, list[float]] = {name: [] for name in forms}
    for _ in range(args.repeats):
        for name, scan in forms.items():
            start = time.perf_counter()
            for _ in range(20):
                scan(a, b, h0).sum().backward()
            times[name].append((time.perf_counter() - start) / 20 * 1e3)
    print(f"machine: {machine()}\nbatch {args.batch}, window {args.window}, width {args.width}, fp32\n")
    print("| form | fwd+bwd ms | vs stepped | largest difference from fp64, relative |\n|---|---|---|---|")
    base = statistics.median(times["stepped"])
    for name, scan in forms.items():
        with torch.no_grad():
            error = ((scan(a, b, h0).double() - exact).abs().max() / exact.abs().max()).item()
        ms = statistics.median(times[name])
        print(f"| {name} | {ms:.2f} | {ms / base:.2f}x | {error:.1e} |")


if __name__ == "__main__":
    main()
