"""Training throughput (target tokens/s): rnnlm's train.py path against plain PyTorch loops, same batches.

    python -m bench.train_throughput                                   # LSTM 2x200, fp32
    python -m bench.train_throughput --precision bf16-mixed --cells rnn gru lstm --hidden 650 --batches 40

Loops over the very same batches (the first --batches of epoch 0 from the default DataModule):
  rnnlm     DataModule + LanguageModel + lightning Trainer, as train.py builds them (progress bar,
            loggers and checkpoints off)
  plain     a plain PyTorch loop written here: the same nn.Module, rnnlm's loss function
            (rnnlm.models.loss.linear_cross_entropy), fused Adam, clipping: the same math, no framework.
            rnnlm / plain is what the framework costs (goal >= 0.95).
and, with --context, two loops users compare against:
  notebook  what a notebook would write: decoder + F.cross_entropy, torch.optim.Adam() with its defaults
  stream    pytorch/examples' word_language_model recipe on the same tokens: one stream cut into 20
            columns, 35-step truncated BPTT, hidden state carried, plain SGD (lr 20). Different batching.
The first --warmup batches of each run are not timed; rounds are interleaved so that machine noise hits
all loops alike; every figure is a median (min-max) over --repeats rounds. MFU: model-FLOPs utilisation
against the matrix-product ceiling of the same precision (bench/ceiling.py).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from functools import partial

import lightning as L
import torch
import torch.nn.functional as F

from bench.ceiling import ceiling_rows, training_flops_per_token
from bench.common import QUIET_RUN, TABLE_HEADER, Row, config, machine, move_overrides, ratio_row
from rnnlm.models.loss import linear_cross_entropy
from rnnlm.precision import bf16_usable
from rnnlm.run.build import build

PRECISION_NAMES = {"32-true": "fp32", "bf16-mixed": "bf16"}


def _autocast(device: str, bf16: bool):
    """bf16 autocast where it runs (as train.py's path: fp32 on a CPU without bf16, machine() says so)."""
    usable = bf16 and bf16_usable(device)
    return torch.autocast(device, dtype=torch.bfloat16) if usable else contextlib.nullcontext()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _model(cfg, device: str):
    L.seed_everything(cfg.seed, verbose=False)
    _, module, _ = build(cfg)
    return module.net.to(device).train(), module.ids["pad"]


def plain_loop(cfg, batches, warmup: int, bf16: bool, device: str = "cpu", notebook: bool = False) -> float:
    net, pad = _model(cfg, device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.optim.lr, **({} if notebook else {"fused": True}))
    clip = cfg.trainer.gradient_clip_val
    tokens, start = 0, 0.0
    for i, b in enumerate(batches):
        if i == warmup:
            _sync(device)
            tokens, start = 0, time.perf_counter()
        inputs, targets = b.inputs.to(device, non_blocking=True), b.targets.to(device, non_blocking=True)
        with _autocast(device, bf16):
            if notebook:
                logits, _ = net(inputs)
                nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=pad,
                                      reduction="sum")  # fmt: skip
            else:
                features, _ = net.features(inputs)
                nll = linear_cross_entropy(features.flatten(0, 1), net.decoder.weight, net.decoder.bias,
                                           targets.flatten(), pad)  # fmt: skip
        opt.zero_grad(set_to_none=True)
        (nll / b.num_tokens).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
        tokens += b.num_tokens
    _sync(device)
    return tokens / (time.perf_counter() - start)


def stream_loop(cfg, datamodule, num_batches: int, warmup: int, bf16: bool, device: str = "cpu") -> float:
    net, _ = _model(cfg, device)
    bsz, bptt = 20, 35
    tokens = torch.from_numpy(datamodule.splits["train"].tokens[: bsz * bptt * (num_batches + 1) + 1].astype("int64"))
    columns = tokens[: (len(tokens) - 1) // bsz * bsz].view(bsz, -1).to(device)  # (20, T), batch first
    windows = (columns.shape[1] - 1) // bptt  # a corpus shorter than the run is read again from the start
    hidden, counted, start = None, 0, 0.0
    for i in range(num_batches):
        if i == warmup:
            _sync(device)
            counted, start = 0, time.perf_counter()
        at = (i % windows) * bptt
        x, y = columns[:, at : at + bptt], columns[:, at + 1 : at + bptt + 1]
        if hidden is not None:
            hidden = tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()
        with _autocast(device, bf16):
            logits, hidden = net(x, hidden)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        net.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.trainer.gradient_clip_val)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(p.grad, alpha=-20.0)
        counted += y.numel()
    _sync(device)
    return counted / (time.perf_counter() - start)


class _Clock(L.Callback):
    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.device, self.tokens, self.start, self.end = warmup, device, 0, 0.0, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        _sync(self.device)
        now = time.perf_counter()
        if batch_idx == self.warmup - 1:
            self.start = now
        elif batch_idx >= self.warmup:
            self.tokens += batch.num_tokens
            self.end = now


def framework_loop(cfg, warmup: int, device: str = "cpu") -> float:
    datamodule, module, trainer = build(cfg)
    clock = _Clock(warmup, device)
    trainer.callbacks.append(clock)
    trainer.fit(module, datamodule=datamodule)
    return clock.tokens / (clock.end - clock.start)


def train_config(cell: str, hidden: int, layers: int, precision: str, batches: int, overrides, device: str = "cpu"):
    return config(
        f"model={cell}", f"model.embed_size={hidden}", f"model.hidden_size={hidden}", f"model.num_layers={layers}",
        "trainer=gpu" if device == "cuda" else "trainer=cpu",
        f"trainer.precision={precision}", f"trainer.limit_train_batches={batches}", "trainer.limit_val_batches=0",
        *QUIET_RUN, *overrides,
    )  # fmt: skip


def measure(
    cells=("lstm",), hidden: int = 200, layers: int = 2, precision: str = "32-true", batches: int = 140,
    warmup: int = 20, repeats: int = 3, overrides=(), context: bool = False, device: str = "cpu",
    ceiling: float | None = None, goals: dict[str, tuple[str, float]] | None = None,
) -> list[Row]:  # fmt: skip
    """Rows per cell: rnnlm and plain tokens/s, their ratio, MFU (given the ceiling) and context loops.

    `goals` maps a row kind ("rnnlm", "mfu", ...) to its goal for every cell measured here.
    """
    prec, bf16, goals = PRECISION_NAMES[precision], precision == "bf16-mixed", goals or {}
    rows: list[Row] = []
    for cell in cells:
        cfg = train_config(cell, hidden, layers, precision, batches, overrides, device)
        datamodule, module, _ = build(cfg)
        data = list(datamodule.train_dataloader())[:batches]
        loops = {
            "rnnlm": partial(framework_loop, cfg, warmup, device),
            "plain": partial(plain_loop, cfg, data, warmup, bf16, device),
        }
        if context:
            loops["notebook"] = partial(plain_loop, cfg, data, warmup, bf16, device, notebook=True)
            loops["stream"] = partial(stream_loop, cfg, datamodule, batches, warmup, bf16, device)
        runs: dict[str, list[float]] = {name: [] for name in loops}
        for _ in range(repeats):
            for name, loop in loops.items():
                runs[name].append(loop())
        base = f"train/{device}/{cell}-{layers}x{hidden}/{prec}"
        shape = f"{cell.upper()} {layers}x{hidden} {prec}"
        what = {
            "rnnlm": f"{shape}: rnnlm (train.py path)", "plain": f"{shape}: plain PyTorch loop, same math",
            "notebook": f"{shape}: notebook loop (F.cross_entropy, Adam defaults)",
            "stream": f"{shape}: pytorch/examples recipe (bptt 35, batch 20, SGD)",
        }  # fmt: skip
        found = {name: Row(f"{base}/{name}", what[name], v, "tokens/s", "higher", goals.get(name))
                 for name, v in runs.items()}  # fmt: skip
        rows += [found["rnnlm"], found["plain"]]
        rows.append(ratio_row(f"{base}/rnnlm-vs-plain", f"{shape}: rnnlm / plain", found["rnnlm"], found["plain"],
                              goals.get("ratio", (">=", 0.95))))  # fmt: skip
        if ceiling:
            flops = training_flops_per_token(vocab_size=module.net.decoder.out_features, **dict(cfg.model))
            mfu = [100 * v * flops / (ceiling * 1e9) for v in runs["rnnlm"]]
            rows.append(Row(f"{base}/mfu", f"{shape}: rnnlm model-FLOPs utilisation ({flops / 1e6:.1f} MFLOP/token)",
                            mfu, "% of ceiling", "higher", goals.get("mfu")))  # fmt: skip
        rows += [found[name] for name in ("notebook", "stream") if name in found]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=["lstm"])
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--precision", default="32-true", choices=list(PRECISION_NAMES))
    ap.add_argument("--batches", type=int, default=140)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--context", action="store_true", help="also the notebook and pytorch/examples loops")
    ap.add_argument("overrides", nargs="*", help="extra train.py overrides, e.g. data.batch_size=64")
    args = ap.parse_args()
    args.cells = move_overrides(args.cells, args.overrides)
    print(f"machine: {machine()}")
    name = "fp32" if args.precision == "32-true" else "bf16"
    ceiling = next(r for r in ceiling_rows(1) if r.key.endswith(name)).median
    rows = measure(args.cells, args.hidden, args.layers, args.precision, args.batches, args.warmup, args.repeats,
                   args.overrides, args.context, ceiling=ceiling)  # fmt: skip
    print(f"\n{args.batches - args.warmup} timed batches, median (min-max) of {args.repeats}; "
          f"matrix-product ceiling {ceiling:.0f} GFLOP/s\n{TABLE_HEADER}")  # fmt: skip
    for row in rows:
        print(row.markdown())


if __name__ == "__main__":
    main()
