"""The output layer + cross-entropy: rnnlm's fused function against torch 2.13's F.linear_cross_entropy.

    python -m bench.loss [--repeats 5] [--steps 20]

Forward + backward of the summed NLL over PTB's default batch shape (32 sentences of 22 words = 704
target tokens), 200-wide features, the 10,002-word vocabulary with a bias, in fp32 and under bf16
autocast: rnnlm/models/loss.py, torch's reference path (options=None: logits, then cross_entropy) and
torch's chunked path (options=LinearCrossEntropyOptions(), its own defaults for this device); then whole
LSTM 2x200 training steps (forward, backward, clipping, fused Adam) with rnnlm's loss and torch's, which
is what decides. Rounds are interleaved, so each ratio compares two timings taken under the same machine
load. The NLLs of the three must agree (printed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.common import TABLE_HEADER, Row, machine, ratio_row
from rnnlm.models.loss import linear_cross_entropy
from rnnlm.precision import cpu_has_bf16

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


def _step_rate(fn: Callable, bf16: bool, steps: int) -> float:
    """Target tokens/s of whole training steps (LSTM 2x200, fused Adam) with this loss, PTB's mean batch."""
    from rnnlm.models.rnn_lm import RNNLanguageModel

    torch.manual_seed(0)
    net = RNNLanguageModel(VOCAB, "lstm", embed_size=WIDTH, hidden_size=WIDTH, num_layers=2, dropout=0.2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    x, y = torch.randint(4, VOCAB, (32, 22)), torch.randint(4, VOCAB, (32, 22))
    times = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            features, _ = net.features(x)
            loss = fn(features.flatten(0, 1), net.decoder.weight, net.decoder.bias, y.flatten()) / TOKENS
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.25)
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return TOKENS / statistics.median(times)


def step_rates(prec: str, repeats: int, steps: int) -> dict[str, list[float]]:
    """Tokens/s of whole steps per loss, in alternating order so that neither always runs first."""
    impls = _impls()
    names = [k for k in impls if k != "torch-chunked"]
    values: dict[str, list[float]] = {n: [] for n in names}
    for r in range(2 * repeats):  # whole steps vary more with this machine's load: twice the rounds
        for name in names if r % 2 == 0 else reversed(names):
            values[name].append(_step_rate(impls[name], prec == "bf16", int(1.5 * steps)))
    return values


def measure(repeats: int = 5, steps: int = 20) -> list[Row]:
    impls, rows = _impls(), []
    steppers = [k for k in impls if k != "torch-chunked"]  # 3-6x slower alone: not a contender
    precisions = (False, True) if cpu_has_bf16() else (False,)
    if len(precisions) == 1:  # oneDNN has no bf16 LSTM there, and bf16 products are emulated (26x slower)
        print("bf16 loss rows skipped: this CPU has no bf16 instructions", flush=True)
    for bf16 in precisions:
        prec = "bf16" if bf16 else "fp32"
        # What decides: whole training steps, where the loss shares the caches and the cores with the rest,
        # in a process of their own, as a training run has one precision to itself (measured after the
        # other precision's in one process, bf16 steps came out 30% apart).
        values = json.loads(subprocess.run(
            [sys.executable, "-m", "bench.loss", "--steps-of", prec, "--repeats", str(repeats), "--steps", str(steps)],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1])  # fmt: skip
        whole = {n: Row(f"loss/cpu/{prec}/step-{n}", f"LSTM 2x200 training step, 32 x 22 words, {prec}, with {n}'s "
                        "loss", values[n], "tokens/s", "higher") for n in steppers}  # fmt: skip
        rows += whole.values()
        if "torch" in whole:
            rows.append(ratio_row(f"loss/cpu/{prec}/step-rnnlm-vs-torch", f"{prec} training step: rnnlm's loss / "
                                  "torch's (above 1: rnnlm's is faster)", whole["rnnlm"], whole["torch"]))  # fmt: skip
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
    ap.add_argument("--steps-of", choices=("fp32", "bf16"), help=argparse.SUPPRESS)  # the suite's subprocess
    args = ap.parse_args()
    if args.steps_of:
        print(json.dumps(step_rates(args.steps_of, args.repeats, args.steps)))
        return
    print(f"machine: {machine()}\n\n{TABLE_HEADER}")
    for row in measure(args.repeats, args.steps):
        print(row.markdown())


if __name__ == "__main__":
    main()
