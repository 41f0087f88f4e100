"""Stream mode against the published Penn Treebank recipes (all stream-level test perplexity) and plain loops.

    python -m bench --only stream_speed  # ~8 min here: stream tokens/s, rnnlm against a plain loop
    python -m bench --only stream        # ~45 min here: ptb_stream_small 6 epochs (and tied), its first epoch
                                         # beside a plain PyTorch loop of the recipe
    python -m bench --only stream_slow   # ~50 min here: medium/large time per epoch; zaremba_small's 13 epochs
    python -m bench.stream --part speed|quality|slow [--quick]   # one part alone, printed, not written

Rows:
  quality/stream/<recipe>/test-ppl   train.py's run of experiment=<recipe>, the best validation checkpoint
                                     tested, against the published number (goal: within 3% / at most 116)
  quality/stream/ptb_stream_small/epoch1-val-ppl-{rnnlm,plain}  the first epoch of the recipe in rnnlm and
                                     written here as pytorch/examples writes it (own model class, seq-first
                                     LSTM, batchify, repackaged hidden state, manual SGD), other random numbers
  train/cpu/lstm-2x200/fp32/stream-{rnnlm,plain}  tokens/s over the same windows: rnnlm's train.py path and
                                     a plain loop (the same network, decoder + F.cross_entropy, manual SGD)
  train/cpu/lstm-2x200/fp32/sentences-rnnlm  the default sentence mode's tokens/s, beside them
  cost/<recipe>/...                  time per epoch measured here and matrix-product FLOPs per token
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from omegaconf import open_dict
from torch import nn

from bench.ceiling import training_flops_per_token
from bench.common import QUIET_RUN, TABLE_HEADER, Row, config, machine, ratio_row
from bench.train_throughput import framework_loop, train_config
from rnnlm.run.build import build

PUBLISHED = {  # stream-level PTB test perplexity; sources in conf/experiment/<recipe>.yaml
    "ptb_stream_small": 117.61,  # pytorch/examples README, 6 epochs
    "ptb_stream_small_tied": 110.44,  # same, --tied
    "zaremba_small": 114.5,  # Zaremba et al. 2014, Table 1
}
PTB_TRAIN_TOKENS = 929_589  # with <eos>
# A fast run leaves what a benchmark does not measure: the progress bar, loggers, text samples.
RECIPE_RUN = ("trainer=cpu", "trainer.enable_progress_bar=false", "logger=[]", "callbacks.samples=null",
              "callbacks.lr_monitor=null")  # fmt: skip


def recipe(name: str, *overrides: str) -> dict:
    """train.py's run of a recipe (fit, then the best validation checkpoint tested): its metrics and history."""
    cfg = config(f"experiment={name}", *RECIPE_RUN, *overrides)
    datamodule, module, trainer = build(cfg)
    t = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    fit_s = time.perf_counter() - t
    history = [dict(h) for h in next(c for c in trainer.callbacks if hasattr(c, "history")).history]
    (tested,) = trainer.test(module, datamodule=datamodule, ckpt_path="best", verbose=False)
    return {"test/ppl": tested["test/ppl"], "history": history, "fit_s": fit_s, "epochs": trainer.current_epoch}


def quality_rows(
    name: str, epochs: int | None, what: str, goal: tuple[str, float], overrides=()
) -> tuple[list[Row], dict]:
    got = recipe(name, *([f"trainer.max_epochs={epochs}"] if epochs else []), *overrides)
    published = PUBLISHED[name]
    label = f"{epochs}ep-" if epochs else ""
    rows = [
        Row(f"quality/stream/{name}/{label}test-ppl", f"{what}: stream-level test ppl (published {published})",
            [got["test/ppl"]], "ppl", "lower", goal),
        Row(f"quality/stream/{name}/{label}vs-published", f"{what}: test ppl / published {published}",
            [got["test/ppl"] / published], "x", "lower"),
        Row(f"quality/stream/{name}/{label}minutes", f"{what}: fit time on this machine ({got['epochs']} epochs)",
            [got["fit_s"] / 60], "min", "lower"),
    ]  # fmt: skip
    return rows, got


# -- the recipe as pytorch/examples writes it ------------------------------------------------------------
class ExamplesModel(nn.Module):
    """pytorch/examples' RNNModel for an LSTM: encoder, dropout, nn.LSTM (seq-first), dropout, decoder."""

    def __init__(self, vocab: int, size: int = 200, layers: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab, size)
        self.rnn = nn.LSTM(size, size, layers, dropout=dropout)
        self.decoder = nn.Linear(size, vocab)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
        return self.decoder(self.drop(out)), hidden


def batchify(stream: torch.Tensor, columns: int) -> torch.Tensor:
    steps = len(stream) // columns
    return stream[: steps * columns].view(columns, steps).t().contiguous()  # (steps, columns)


def examples_epoch(datamodule, seed: int = 1111, lr: float = 20.0, clip: float = 0.25, bptt: int = 35,
                   max_windows: int | None = None, timings: dict | None = None) -> tuple[float, float]:  # fmt: skip
    """One epoch of pytorch/examples' main.py on the same streams: validation perplexity and tokens/s
    (`timings`, when given, receives the validation's seconds as "eval_s")."""
    torch.manual_seed(seed)
    train = batchify(torch.from_numpy(datamodule.stream("train")).long(), 20)
    val = batchify(torch.from_numpy(datamodule.stream("val")).long(), 10)
    model = ExamplesModel(datamodule.vocab_size).train()
    hidden, tokens, t = None, 0, time.perf_counter()
    for n, i in enumerate(range(0, train.size(0) - 1, bptt)):
        if max_windows is not None and n == max_windows:
            break
        seq_len = min(bptt, train.size(0) - 1 - i)
        x, y = train[i : i + seq_len], train[i + 1 : i + 1 + seq_len]
        hidden = None if hidden is None else tuple(h.detach() for h in hidden)
        model.zero_grad()
        out, hidden = model(x, hidden)
        F.cross_entropy(out.view(-1, out.size(-1)), y.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        tokens += y.numel()
    speed = tokens / (time.perf_counter() - t)
    model.eval()
    total, count, hidden, t = 0.0, 0, None, time.perf_counter()
    with torch.no_grad():
        for i in range(0, val.size(0) - 1, bptt):
            seq_len = min(bptt, val.size(0) - 1 - i)
            out, hidden = model(val[i : i + seq_len], hidden)
            y = val[i + 1 : i + 1 + seq_len]
            total += F.cross_entropy(out.view(-1, out.size(-1)), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    if timings is not None:
        timings["eval_s"] = time.perf_counter() - t
    return math.exp(total / count), speed


# -- throughput over the same windows ----------------------------------------------------------------------
def plain_windows(cfg, batches: int, warmup: int) -> float:
    """The same windows as rnnlm's loader, the same network, in a plain loop (F.cross_entropy, manual SGD)."""
    datamodule, module, _ = build(cfg)
    net = module.net.train()
    dataset, windows = datamodule._stream("train")
    hidden, tokens, start = None, 0, 0.0
    for i, span in enumerate(windows.batches(0)[:batches]):
        if i == warmup:
            tokens, start = 0, time.perf_counter()
        b = dataset.__getitems__(list(span))
        hidden = None if hidden is None else tuple(h.detach() for h in hidden)
        logits, hidden = net(b.inputs, hidden)
        loss = F.cross_entropy(logits.flatten(0, 1), b.targets.flatten())
        net.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.25)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(p.grad, alpha=-20.0)
        tokens += b.num_tokens
    return tokens / (time.perf_counter() - start)


def throughput_rows(batches: int, warmup: int, repeats: int, overrides=()) -> list[Row]:
    limits = (
        *QUIET_RUN,
        "trainer=cpu",
        f"trainer.limit_train_batches={batches}",
        "trainer.limit_val_batches=0",
        "~scheduler",  # no validation: nothing for the plateau schedule to read
    )
    stream_cfg = config("experiment=ptb_stream_small", *limits, *overrides)
    sentence_cfg = train_config("lstm", 200, 2, "32-true", batches, [o for o in overrides if "bptt" not in o])
    runs: dict[str, list[float]] = {"stream-rnnlm": [], "stream-plain": [], "sentences-rnnlm": []}
    for _ in range(repeats):  # interleaved, so that the machine's load hits every loop alike
        runs["stream-rnnlm"].append(framework_loop(stream_cfg, warmup))
        runs["stream-plain"].append(plain_windows(stream_cfg, batches, warmup))
        runs["sentences-rnnlm"].append(framework_loop(sentence_cfg, warmup))
    base = "train/cpu/lstm-2x200/fp32"
    what = {
        "stream-rnnlm": "LSTM 2x200 fp32, stream (ptb_stream_small): rnnlm (train.py path)",
        "stream-plain": "LSTM 2x200 fp32, stream: plain loop over the same windows (F.cross_entropy, SGD)",
        "sentences-rnnlm": "LSTM 2x200 fp32, sentences (the default data, Adam): rnnlm",
    }
    rows = {k: Row(f"{base}/{k}", what[k], v, "tokens/s", "higher") for k, v in runs.items()}
    return [*rows.values(), ratio_row(f"{base}/stream-rnnlm-vs-plain", "LSTM 2x200 fp32, stream: rnnlm / plain loop",
                                      rows["stream-rnnlm"], rows["stream-plain"], (">=", 1.0))]  # fmt: skip


def cost_rows(name: str, batches: int, warmup: int, overrides=()) -> list[Row]:
    """Time per PTB epoch on this machine (from tokens/s over a few windows) and FLOPs per token."""
    cfg = config(f"experiment={name}", *QUIET_RUN, "trainer=cpu", f"trainer.limit_train_batches={batches}",
                 "trainer.limit_val_batches=0", *overrides)  # fmt: skip
    speed = framework_loop(cfg, warmup)
    with open_dict(cfg):
        model = dict(cfg.model)
    flops = training_flops_per_token(vocab_size=10_002, **model)
    return [
        Row(f"cost/{name}/tokens-per-s", f"{name}: training tokens/s here ({batches - warmup} windows)", [speed],
            "tokens/s", "higher"),
        Row(f"cost/{name}/epoch-minutes", f"{name}: one PTB epoch here ({PTB_TRAIN_TOKENS:,} tokens)",
            [PTB_TRAIN_TOKENS / speed / 60], "min", "lower"),
        Row(f"cost/{name}/mflop-per-token", f"{name}: matrix-product training FLOPs per token", [flops / 1e6],
            "MFLOP"),
    ]  # fmt: skip


def measure_speed(quick: bool = False, overrides=()) -> list[Row]:
    """Tokens/s (the machine to itself: the quality runs do not need it, these rows do)."""
    if quick:
        return throughput_rows(6, 2, 1, [*overrides, "data.bptt=5"])
    return throughput_rows(140, 20, 5, overrides)


def measure(quick: bool = False, overrides=()) -> list[Row]:
    if quick:
        overrides = [*overrides, "data.bptt=5"]
        cfg = config("experiment=ptb_stream_small", *RECIPE_RUN, *overrides)
        datamodule, _, _ = build(cfg)
        ppl, _ = examples_epoch(datamodule, bptt=5, max_windows=5)
        small, _ = quality_rows("ptb_stream_small", 1, "ptb_stream_small, quick", None, overrides)
        return [*small, Row("quality/stream/quick/plain-val-ppl", "5 windows of the plain recipe: val ppl", [ppl],
                            "ppl")]  # fmt: skip
    small, got = quality_rows("ptb_stream_small", 6, "ptb_stream_small, 6 epochs", ("<=", 117.61 * 1.03), overrides)
    tied, _ = quality_rows("ptb_stream_small_tied", 6, "ptb_stream_small_tied, 6 epochs", ("<=", 110.44 * 1.03),
                           overrides)  # fmt: skip
    first = got["history"][0]["val/ppl"]
    cfg = config("experiment=ptb_stream_small", *RECIPE_RUN, *overrides)
    datamodule, _, _ = build(cfg)
    plain, _ = examples_epoch(datamodule)
    key = "quality/stream/ptb_stream_small/epoch1-val-ppl"
    epoch1 = [
        Row(f"{key}-rnnlm", "ptb_stream_small: val ppl after epoch 1, rnnlm", [first], "ppl", "lower"),
        Row(f"{key}-plain", "the same recipe as a plain PyTorch loop (pytorch/examples' code, seed 1111)", [plain],
            "ppl", "lower"),
        Row(f"{key}-gap-pct", "|rnnlm - plain| / plain", [100 * abs(first - plain) / plain], "%", "lower", ("<=", 2.0)),
    ]  # fmt: skip
    return [*small, *tied, *epoch1]


def measure_slow(overrides=()) -> list[Row]:
    """The larger recipes' cost first (a few timed windows each, on a quiet machine), then zaremba_small."""
    cost = [*cost_rows("zaremba_small", 60, 10, overrides), *cost_rows("zaremba_medium", 30, 5, overrides),
            *cost_rows("zaremba_large", 12, 2, overrides)]  # fmt: skip
    rows, _ = quality_rows("zaremba_small", None, "zaremba_small, 13 epochs", ("<=", 116.0), overrides)
    return [*cost, *rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--part", choices=["speed", "quality", "slow"], default="quality")
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}", flush=True)
    run = {"speed": lambda: measure_speed(args.quick), "quality": lambda: measure(args.quick), "slow": measure_slow}
    for row in run[args.part]():
        print(row.markdown(), flush=True)


if __name__ == "__main__":
    main()
