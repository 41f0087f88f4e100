"""The data pipeline at scale: prepare (read, learn the vocabulary, encode, cache), cached reload, one
epoch's batch order, and peak memory, on a generated 1M-sentence corpus and on Penn Treebank.

    python -m bench.data_pipeline                         # 1,000,000 sentences, 3 repeats
    python -m bench.data_pipeline --sentences 200000 --repeats 1

Each measurement runs in a fresh process, so peak memory is the pipeline's own (VmHWM) and no run
benefits from another's warm caches in Python. The corpus: lengths uniform in 5-30 words, words drawn
from a Zipf(1.1) law over a 50,000-word vocabulary of made-up words (a power law like real text's).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import machine


def make_corpus(path: Path, n: int, seed: int = 0) -> int:
    """Write n sentences, one per line; returns the number of words."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    vocab = ["".join(letters[rng.zipf(1.5, size=rng.integers(2, 10)).clip(max=26) - 1]) for _ in range(50_000)]
    vocab = np.array(list(dict.fromkeys(vocab)))  # distinct words, in first-seen order
    lengths = rng.integers(5, 31, size=n)
    ids = (rng.zipf(1.1, size=int(lengths.sum())) - 1) % len(vocab)
    words = vocab[ids].tolist()
    with path.open("w") as f:
        start = 0
        for length in lengths.tolist():
            f.write(" ".join(words[start : start + length]))
            f.write("\n")
            start += length
    return int(lengths.sum())


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    from rnnlm.data import SentenceDataModule

    source = {"source": "ptb"} if args.file == "ptb" else {
        "source": "text", "train_path": args.file, "val_fraction": 0.01, "test_fraction": 0.01,
    }  # fmt: skip
    t0 = time.perf_counter()
    dm = SentenceDataModule(cache_dir=args.cache, **source)
    dm.prepare()
    prepared = time.perf_counter() - t0
    sampler = dm.sampler("train")
    t = time.perf_counter()
    sampler.batches(0)
    first_order = time.perf_counter() - t
    orders = []
    for epoch in range(1, 6):
        t = time.perf_counter()
        sampler.batches(epoch)
        orders.append(time.perf_counter() - t)
    train = dm.splits["train"]
    print(json.dumps({
        "prepare": prepared, "end_to_end": prepared + first_order, "epoch_order": statistics.median(orders),
        "steps": dm.meta.get("seconds", {}), "sentences": len(train), "tokens": len(train.tokens),
        "vocab": dm.vocab_size, "batches": len(sampler),
        "peak_gb": peak_rss_gb(),
    }))  # fmt: skip


def peak_rss_gb() -> float:
    """This process's own peak RSS: VmHWM starts afresh at exec, unlike ru_maxrss, which a child
    inherits from the (corpus-generating) parent that forked it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e6  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def measure(file: str, cache: str) -> dict:
    cmd = [sys.executable, "-m", "bench.data_pipeline", "--worker", "--file", file, "--cache", cache]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def med(rows: list[dict], key: str) -> str:
    values = [r[key] for r in rows]
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        t = time.perf_counter()
        words = make_corpus(corpus, args.sentences)
        print(f"generated {args.sentences:,} sentences, {words:,} words, {corpus.stat().st_size / 1e6:.0f} MB "
              f"in {time.perf_counter() - t:.0f}s")  # fmt: skip
        print("| corpus | prepare, cold (s) | of which read / vocab / encode | cached reload (s) | epoch order (s) "
              "| peak memory cold / reload (GB) |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for name, file in ((f"generated {args.sentences // 1000}k", str(corpus)), ("PTB", "ptb")):
            cold, warm = [], []
            for i in range(args.repeats):
                cache = str(Path(tmp) / f"cache-{name}-{i}")
                cold.append(measure(file, cache))  # empty cache: builds and writes it
                warm.append(measure(file, cache))  # the same cache: loads it
            steps = " / ".join(
                f"{statistics.median([r['steps'].get(k, 0.0) for r in cold]):.1f}"
                for k in ("read", "tokenizer", "encode")
            )
            print(
                f"| {name}: {cold[0]['sentences']:,} train sentences, {cold[0]['tokens']:,} tokens, vocab "
                f"{cold[0]['vocab']:,} | {med(cold, 'end_to_end')} | {steps} | {med(warm, 'prepare')} "
                f"| {med(warm, 'epoch_order')} | {med(cold, 'peak_gb')} / {med(warm, 'peak_gb')} |"
            )
    print("prepare, cold = read + split + tokenizer + encode + cache write + first epoch order, in a new process; "
          "median (min-max) of the repeats")  # fmt: skip


if __name__ == "__main__":
    main()
