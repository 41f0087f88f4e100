"""Training throughput (target tokens/s): rnnlm's Trainer path against plain PyTorch loops, same batches.

    python -m bench.train_throughput                      # LSTM 2x200, default batching, fp32
    python -m bench.train_throughput --precision bf16-mixed --cells rnn gru lstm

Three loops over the very same batches (the first --batches of epoch 0 from the default DataModule):
  plain       what a notebook would write: the same nn.Module, F.cross_entropy, torch.optim.Adam
  plain+      the same loop with fused Adam, as rnnlm configures it (the same math as the framework)
  rnnlm       DataModule + LanguageModel + lightning Trainer, as train.py builds them
and, for reference, pytorch/examples' word_language_model loop on the same tokens:
  stream      one token stream cut into 20 columns, 35-step truncated BPTT, hidden state carried,
              plain SGD (lr 20): a different batching, so a context figure, not a like-for-like one
The first --warmup batches of each run are not timed; rounds are interleaved so that machine noise
hits all loops alike; each cell is a median (min-max) over --repeats rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import lightning as L
import torch
import torch.nn.functional as F

from bench.common import config, machine, median_spread
from rnnlm.training import build


def plain_loop(cfg, batches, warmup: int, fast: bool, bf16: bool) -> float:
    L.seed_everything(cfg.seed)
    _, module, _ = build(cfg)
    net, pad = module.net, module.ids["pad"]
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optim.lr, fused=fast)
    clip = cfg.trainer.gradient_clip_val
    tokens, start = 0, 0.0
    for i, b in enumerate(batches):
        if i == warmup:
            tokens, start = 0, time.perf_counter()
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with amp:
            logits, _ = net(b.inputs)
        nll = F.cross_entropy(logits.flatten(0, 1).float(), b.targets.flatten(), ignore_index=pad, reduction="sum")
        opt.zero_grad(set_to_none=True)
        (nll / b.num_tokens).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
        tokens += b.num_tokens
    return tokens / (time.perf_counter() - start)


def stream_loop(cfg, datamodule, num_batches: int, warmup: int, bf16: bool) -> float:
    L.seed_everything(cfg.seed)
    _, module, _ = build(cfg)
    net, (bsz, bptt) = module.net, (20, 35)
    tokens = torch.from_numpy(datamodule.splits["train"].tokens[: bsz * bptt * (num_batches + 1) + 1].astype("int64"))
    columns = tokens[: (len(tokens) - 1) // bsz * bsz].view(bsz, -1)  # (20, T): batch first, like rnnlm
    hidden, counted, start = None, 0, 0.0
    for i in range(num_batches):
        if i == warmup:
            counted, start = 0, time.perf_counter()
        x, y = columns[:, i * bptt : (i + 1) * bptt], columns[:, i * bptt + 1 : (i + 1) * bptt + 1]
        if hidden is not None:
            hidden = tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with amp:
            logits, hidden = net(x, hidden)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        net.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.trainer.gradient_clip_val)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(p.grad, alpha=-20.0)
        counted += y.numel()
    return counted / (time.perf_counter() - start)


class _Clock(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.tokens, self.start, self.end = warmup, 0, 0.0, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if batch_idx == self.warmup - 1:
            self.start = now
        elif batch_idx >= self.warmup:
            self.tokens += batch.num_tokens
            self.end = now


def framework_loop(cfg, num_batches: int, warmup: int) -> float:
    datamodule, module, trainer = build(cfg)
    clock = _Clock(warmup)
    trainer.callbacks.append(clock)
    trainer.fit(module, datamodule=datamodule)
    return clock.tokens / (clock.end - clock.start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=["lstm"])
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    ap.add_argument("--batches", type=int, default=160)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("overrides", nargs="*", help="extra train.py overrides, e.g. data.batch_size=64")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    rows = []
    for cell in args.cells:
        overrides = [
            f"model={cell}", f"model.embed_size={args.hidden}", f"model.hidden_size={args.hidden}",
            f"model.num_layers={args.layers}", f"trainer.precision={args.precision}", "trainer.max_epochs=1",
            f"trainer.limit_train_batches={args.batches}", "trainer.limit_val_batches=0",
            "trainer.num_sanity_val_steps=0", "trainer.enable_checkpointing=false",
            "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false", "logger=[]",
            "callbacks=[]", *args.overrides,
        ]  # fmt: skip
        cfg = config(*overrides)
        dm, _, _ = build(cfg)
        batches = list(dm.train_dataloader())[: args.batches]
        bf16 = args.precision == "bf16-mixed"
        runs: dict[str, list[float]] = {"plain": [], "plain+": [], "rnnlm": [], "stream": []}
        for _ in range(args.repeats):
            runs["plain"].append(plain_loop(cfg, batches, args.warmup, fast=False, bf16=bf16))
            runs["plain+"].append(plain_loop(cfg, batches, args.warmup, fast=True, bf16=bf16))
            runs["rnnlm"].append(framework_loop(cfg, args.batches, args.warmup))
            runs["stream"].append(stream_loop(cfg, dm, args.batches, args.warmup, bf16=bf16))
        med = {k: statistics.median(v) for k, v in runs.items()}
        rows.append((cell, runs, med))

    print(f"\n{args.layers}x{args.hidden}, {args.precision}, {args.batches - args.warmup} timed batches, "
          f"median (min-max) of {args.repeats}; target tokens/s")  # fmt: skip
    print("| cell | plain | plain+ | rnnlm | rnnlm / plain | rnnlm / plain+ | stream (reference) |")
    print("|---|---|---|---|---|---|---|")
    for cell, runs, med in rows:
        print(
            f"| {cell} | {median_spread(runs['plain'])} | {median_spread(runs['plain+'])} | "
            f"{median_spread(runs['rnnlm'])} | {med['rnnlm'] / med['plain']:.2f} | "
            f"{med['rnnlm'] / med['plain+']:.2f} | {median_spread(runs['stream'])} |"
        )


if __name__ == "__main__":
    main()
