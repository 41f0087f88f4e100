"""A WikiText-103-sized vocabulary: the full softmax against the adaptive one (model.output=adaptive).

    python -m bench --only adaptive                 # the suite's section (writes docs/BENCHMARKS.md)
    python -m bench.adaptive [--quick]              # printed only

The corpus (make_corpus): 267,735 made-up word types (WikiText-103's vocabulary size) and 3M training tokens
whose counts follow a truncated Zipf law. LSTM 2x200 in train.py's path, default sentence batches, fp32; the
adaptive softmax with its default cutoffs (from model.adaptive_coverage).

Rows:
  train/cpu/vocab267k/{full,adaptive}          tokens/s, interleaved rounds over the same batches
  train/cpu/vocab267k/adaptive-vs-full         their ratio (goal: >= 3)
  quality/vocab267k/{full,adaptive}/val-ppl    validation perplexity after the same training batches
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from bench.common import QUIET_RUN, TABLE_HEADER, Row, config, machine, ratio_row
from bench.train_throughput import framework_loop
from rnnlm.run.build import build

VOCAB = 267_735
OUTPUTS = {"full": (), "adaptive": ("model.output=adaptive",)}


def make_corpus(folder: Path, tokens: int, vocab: int = VOCAB, seed: int = 0) -> dict[str, Path]:
    """train/val/test files: every word type once (lines of 20 words, so the vocabulary has them all), then
    sentences of 5-30 words, each word a draw from a Zipf law of exponent 1.1 truncated to the vocabulary
    (about the shape of English word counts) or, half the time, a function of the word before it (one of
    the 1,000 most frequent: something to learn)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(vocab)])
    zipf = 1.0 / np.arange(1, vocab + 1) ** 1.1
    zipf /= zipf.sum()
    paths = {}
    for split, n in (("train", tokens), ("val", max(tokens // 50, 2000)), ("test", max(tokens // 50, 2000))):
        ids = rng.choice(vocab, size=n, p=zipf)
        follows = np.flatnonzero(rng.random(n) < 0.5)[1:] if n > 1 else np.zeros(0, dtype=np.int64)
        ids[follows] = (ids[follows - 1] * 31 + 7) % 1000  # a function of the word drawn before it
        lengths = rng.integers(5, 31, size=n // 17 + 1)
        bounds = np.minimum(np.cumsum(lengths), n)
        lines = [" ".join(words[i : i + 20]) for i in range(0, vocab, 20)] if split == "train" else []
        lines += [" ".join(words[ids[a:b]]) for a, b in zip(np.r_[0, bounds[:-1]], bounds) if b > a]
        paths[split] = folder / f"{split}.txt"
        paths[split].write_text("\n".join(lines) + "\n")
    return paths


def measure(tokens: int = 3_000_000, batches: int = 60, warmup: int = 10, repeats: int = 3, overrides=()) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_corpus(Path(tmp), tokens)
        data = ["data=text", *(f"data.{s}_path={p}" for s, p in paths.items()), "trainer=cpu"]
        speed: dict[str, list[float]] = {name: [] for name in OUTPUTS}
        for _ in range(repeats):  # interleaved: the machine's load hits both alike
            for name, extra in OUTPUTS.items():
                cfg = config(*data, *extra, f"trainer.limit_train_batches={batches}", "trainer.limit_val_batches=0",
                             *QUIET_RUN, *overrides)  # fmt: skip
                speed[name].append(framework_loop(cfg, warmup))
        rows = {n: Row(f"train/cpu/vocab267k/{n}", f"LSTM 2x200, {VOCAB:,} words, {n} softmax (fp32)", v,
                       "tokens/s", "higher") for n, v in speed.items()}  # fmt: skip
        quality = [
            Row(f"quality/vocab267k/{name}/val-ppl", f"{name} softmax: val ppl after the same {batches} batches",
                [val_ppl([*data, *extra, *overrides], batches)], "ppl", "lower")
            for name, extra in OUTPUTS.items()
        ]  # fmt: skip
    ratio = ratio_row("train/cpu/vocab267k/adaptive-vs-full", "adaptive / full softmax (tokens/s)",
                      rows["adaptive"], rows["full"], (">=", 3.0))  # fmt: skip
    return [*rows.values(), ratio, *quality]


def val_ppl(overrides: list[str], batches: int) -> float:
    cfg = config(*overrides, f"trainer.limit_train_batches={batches}", *QUIET_RUN)
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    (result,) = trainer.validate(module, datamodule=datamodule, verbose=False)
    return result["val/ppl"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}", flush=True)
    rows = measure(50_000, 6, 2, 1) if args.quick else measure()
    for row in rows:
        print(row.markdown(), flush=True)


if __name__ == "__main__":
    main()
