"""Where a training step's time goes, by batch shape: what makes small sentence batches slow.

    python -m bench.step_overhead

For batches of 32 sentences of 5, 10, 22 (PTB's mean) and 40 words, LSTM 2x200 with PTB's 10k vocabulary,
it times forward+backward (rnnlm's fused output layer and loss), gradient clipping and the optimizer
step, for torch.optim.Adam's default implementation and for fused=True (what conf/optim/adam.yaml sets).
Medians of --steps steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.common import machine
from rnnlm.models.loss import linear_cross_entropy
from rnnlm.models.rnn_lm import RNNLanguageModel


def time_steps(net, opt, x, y, steps: int) -> tuple[float, float, float]:
    parts: list[tuple[float, float, float]] = []
    for i in range(steps + 3):
        t0 = time.perf_counter()
        features, _ = net.features(x)
        loss = linear_cross_entropy(features.flatten(0, 1), net.decoder.weight, net.decoder.bias, y.flatten(), -100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t1 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.25)
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if i >= 3:  # warm-up steps are not counted
            parts.append((t1 - t0, t2 - t1, t3 - t2))
    return tuple(statistics.median(p[k] for p in parts) * 1e3 for k in range(3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--vocab", type=int, default=10002)
    args = ap.parse_args()
    print(f"machine: {machine()}\n")
    print("| batch (sentences x length) | tokens | optimizer | fwd+bwd ms | clip ms | step ms | tokens/s |")
    print("|---|---|---|---|---|---|---|")
    for length in (5, 10, 22, 40):
        for fused in (False, True):
            torch.manual_seed(0)
            net = RNNLanguageModel(args.vocab, "lstm", embed_size=200, hidden_size=200, num_layers=2, dropout=0.3)
            opt = torch.optim.Adam(net.parameters(), lr=2e-3, fused=fused)
            x = torch.randint(4, args.vocab, (32, length))
            y = torch.randint(4, args.vocab, (32, length))
            fb, clip, step = time_steps(net, opt, x, y, args.steps)
            name = "Adam(fused=True)" if fused else "Adam (default)"
            rate = 32 * length / (fb + clip + step) * 1e3
            print(f"| 32 x {length} | {32 * length} | {name} | {fb:.1f} | {clip:.1f} | {step:.1f} | {rate:.0f} |")


if __name__ == "__main__":
    main()
