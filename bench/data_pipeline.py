"""The data pipeline at scale: prepare (read, learn the vocabulary, encode, cache), cached reload, one
epoch's batch order, and peak memory, on a generated 1M-sentence corpus and on Penn Treebank.

    python -m bench.data_pipeline                         # 1,000,000 sentences, 3 repeats
    python -m bench.data_pipeline --sentences 200000 --repeats 1
    python -m bench.data_pipeline --scale --repeats 1     # 10M- and 100M-token corpora: how cost grows

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

from bench.common import TABLE_HEADER, Row, machine


def make_corpus(path: Path, n: int, seed: int = 0) -> int:
    """Write n sentences, one per line, a million at a time (a 100M-token file never sits in memory);
    returns the number of words."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    vocab = ["".join(letters[rng.zipf(1.5, size=rng.integers(2, 10)).clip(max=26) - 1]) for _ in range(50_000)]
    vocab = np.array(list(dict.fromkeys(vocab)))  # distinct words, in first-seen order
    words_total = 0
    with path.open("w") as f:
        for start in range(0, n, 1_000_000):
            lengths = rng.integers(5, 31, size=min(1_000_000, n - start))
            ids = (rng.zipf(1.1, size=int(lengths.sum())) - 1) % len(vocab)
            words = vocab[ids].tolist()
            at = 0
            for length in lengths.tolist():
                f.write(" ".join(words[at : at + length]))
                f.write("\n")
                at += length
            words_total += int(lengths.sum())
    return words_total


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints a JSON line."""
    from rnnlm.data import SentenceDataModule

    source = {"source": "ptb"} if args.file == "ptb" else {
        "source": "text", "train_path": args.file, "val_fraction": 0.01, "test_fraction": 0.01,
    }  # fmt: skip
    baseline = current_rss_gb()  # the interpreter, torch, Lightning and rnnlm imported: before any data
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
        "peak_gb": peak_rss_gb(), "baseline_gb": baseline,
        "encoded_gb": sum(4 * len(d.tokens) + 8 * len(d.offsets) for d in dm.splits.values()) / 1e9,
    }))  # fmt: skip


def current_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1e6  # kB
    return 0.0


def peak_rss_gb() -> float:
    """This process's own peak RSS: VmHWM starts afresh at exec, unlike ru_maxrss, which a child
    inherits from the (corpus-generating) parent that forked it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e6  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def measure_once(file: str, cache: str) -> dict:
    cmd = [sys.executable, "-m", "bench.data_pipeline", "--worker", "--file", file, "--cache", cache]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def upto(goals: dict[str, float], name: str) -> tuple[str, float] | None:
    return ("<=", goals[name]) if name in goals else None


def measure(sentences: int = 1_000_000, repeats: int = 3) -> list[Row]:
    """Prepare (cold), cached reload, one epoch's batch order and peak memory for a generated corpus and PTB.

    Every figure comes from a new process (so imports and caches are cold), `repeats` times.
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        make_corpus(corpus, sentences)
        name = f"{sentences // 1000}k" if sentences < 1_000_000 else f"{sentences // 1_000_000}M"
        for key, file in ((f"generated-{name}", str(corpus)), ("ptb", "ptb")):
            cold, warm = [], []
            for i in range(repeats):
                cache = str(Path(tmp) / f"cache-{key}-{i}")
                cold.append(measure_once(file, cache))  # empty cache: builds and writes it
                warm.append(measure_once(file, cache))  # the same cache: loads it
            ptb = key == "ptb"
            goal = {} if ptb else {"prepare": 15.0, "reload": 2.0, "order": 0.5, "memory": 2.0}  # seconds, GB
            corpus_name = "PTB" if ptb else f"{name} sentences"
            size = f"{cold[0]['sentences']:,} train sentences, {cold[0]['tokens']:,} tokens"
            about = size if ptb else f"generated, {size}"
            rows += [
                Row(f"data/{key}/prepare-cold", f"{corpus_name} ({about}): prepare with an empty cache + first epoch "
                    "order", [r["end_to_end"] for r in cold], "s", "lower", upto(goal, "prepare")),
                Row(f"data/{key}/reload", f"{corpus_name}: prepare from the cache", [r["prepare"] for r in warm], "s",
                    "lower", upto(goal, "reload")),
                Row(f"data/{key}/epoch-order", f"{corpus_name}: one later epoch's batch order",
                    [r["epoch_order"] for r in warm], "s", "lower", upto(goal, "order")),
                Row(f"data/{key}/peak-memory-cold", f"{corpus_name}: peak resident memory, cold prepare (incl. "
                    "~0.35 GB of torch and Lightning)", [r["peak_gb"] for r in cold], "GB", "lower",
                    upto(goal, "memory")),
            ]  # fmt: skip
    return rows


SCALES = (10_000_000, 100_000_000)  # tokens of the generated corpora for the growth rows


def measure_scale(scales=SCALES, repeats: int = 1) -> list[Row]:
    """How cost grows with the corpus: cold prepare, cached reload (memory-mapped), one epoch's batch order and
    peak memory for generated corpora of `scales` tokens (17.5 words a sentence), and per-token ratios."""
    rows, per_token = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for tokens in scales:
            corpus = Path(tmp) / f"corpus-{tokens}.txt"
            make_corpus(corpus, round(tokens / 17.5))
            name = f"{tokens // 1_000_000}M-tokens"
            cold, warm = [], []
            for i in range(repeats):
                cache = str(Path(tmp) / f"cache-{tokens}-{i}")
                cold.append(measure_once(str(corpus), cache))
                warm.append(measure_once(str(corpus), cache))
            corpus.unlink()
            c = cold[0]
            over = [(r["peak_gb"] - r["baseline_gb"]) / r["encoded_gb"] for r in cold]
            per_token[tokens] = statistics.median(r["end_to_end"] for r in cold) / c["tokens"]
            what = f"generated, {c['tokens']:,} train tokens, {c['sentences']:,} sentences, {c['vocab']:,} words"
            rows += [
                Row(f"data/{name}/prepare-cold", f"{name} ({what}): prepare with an empty cache + first epoch order",
                    [r["end_to_end"] for r in cold], "s", "lower"),
                Row(f"data/{name}/reload", f"{name}: prepare from the cache (memory-mapped)",
                    [r["prepare"] for r in warm], "s", "lower", ("<=", 2.0) if tokens >= 100_000_000 else None),
                Row(f"data/{name}/epoch-order", f"{name}: one later epoch's batch order",
                    [r["epoch_order"] for r in warm], "s", "lower"),
                Row(f"data/{name}/peak-memory-cold", f"{name}: peak resident memory, cold prepare (baseline "
                    f"{c['baseline_gb']:.2f} GB of imports; encoded corpus {c['encoded_gb']:.2f} GB)",
                    [r["peak_gb"] for r in cold], "GB", "lower"),
                Row(f"data/{name}/peak-over-baseline-vs-encoded", f"{name}: (peak - baseline) / encoded corpus",
                    over, "x", "lower", ("<=", 2.0)),
                Row(f"data/{name}/reload-peak-memory", f"{name}: peak resident memory, cached reload",
                    [r["peak_gb"] for r in warm], "GB", "lower"),
            ]  # fmt: skip
    small, large = min(scales), max(scales)
    if small != large:
        rows.append(Row(f"data/growth/prepare-per-token-{large // 1_000_000}M-vs-{small // 1_000_000}M",
                        f"cold prepare time per token, {large:,} tokens / {small:,} (1 = linear growth)",
                        [per_token[large] / per_token[small]], "x", "lower", ("<=", 1.0)))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=int, nargs="*", help="token counts for the growth rows instead (10M, 100M)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    print(f"machine: {machine()}\n\n{TABLE_HEADER}", flush=True)
    rows = (
        measure_scale(args.scale or SCALES, args.repeats)
        if args.scale is not None
        else measure(args.sentences, args.repeats)
    )
    for row in rows:
        print(row.markdown(), flush=True)


if __name__ == "__main__":
    main()
