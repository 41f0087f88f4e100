"""The Kneser-Ney baseline (docs/BASELINES.md): sentence-level val and test perplexity, the n-grams kept, the time to
count and estimate and the time to score, and the peak memory, for each order and set of cutoffs, on this machine's
CPU (named in the table). The corpus is read (or loaded from the cache) once, before any timing.

    python -m bench.ngram [--orders 2 3 4 5] [--cutoffs none mikolov srilm] [ngram overrides, e.g. data=wikitext2]

Cutoffs (the least count an n-gram of each order needs to keep a probability of its own): none keeps every n-gram;
mikolov is Mikolov's KN5 (SRILM's `-gt3min 1 -gt4min 1` with its default gt5min 2: singleton 5-grams cut);
srilm is SRILM's defaults (1 for unigrams and bigrams, 2 above). Run it alone on the machine: peak memory is the
process's, the torch import included.
"""

from __future__ import annotations

import argparse
import math
import resource
import time

from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from bench.common import CONF, machine
from rnnlm.data.tokenizer import special_ids
from rnnlm.ngram import KneserNey, Text
from rnnlm.run.build import build_datamodule

CUTOFFS = {
    "none": lambda order: [1] * order,
    "mikolov": lambda order: [1] * (order - 1) + [2] if order == 5 else [1] * order,
    "srilm": lambda order: [1, 1, *[2] * (order - 2)][:order],
}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.ngram", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--orders", type=int, nargs="+", default=[2, 3, 4, 5])
    ap.add_argument("--cutoffs", nargs="+", default=["none", "mikolov", "srilm"], choices=sorted(CUTOFFS))
    ap.add_argument("overrides", nargs="*", help="python -m rnnlm.ngram overrides (the data, the tokenizer)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(argv)
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="ngram", overrides=args.overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = "/tmp/rnnlm-bench"
    datamodule = build_datamodule(cfg, None)
    datamodule.prepare()
    ids = special_ids(datamodule.tokenizer)
    texts = {s: Text.of(datamodule.splits[s], ids["sos"], ids["eos"]) for s in ("train", "val", "test")}
    print(f"# {cfg.data.source}: sentence-level perplexity (each sentence from <s>, every word and <eos> counted)")
    print(f"# {machine()}")
    print("| order | cutoffs | n-grams kept | val ppl | test ppl | count + estimate s | score val+test s | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    rows, seen = [], set()
    for order in args.orders:
        for name in args.cutoffs:
            cutoffs = CUTOFFS[name](order)
            if tuple(cutoffs) in seen:
                continue
            seen.add(tuple(cutoffs))
            started = time.perf_counter()
            model = KneserNey(order, datamodule.vocab_size, ids["sos"], [ids["pad"], ids["sos"]], cutoffs)
            model.fit(texts["train"])
            fitted = time.perf_counter()
            ppl = {s: math.exp(-model.log_probs(texts[s]).mean()) for s in ("val", "test")}
            scored = time.perf_counter()
            row = {"order": order, "cutoffs": cutoffs, "kept": sum(lv.kept for lv in model.levels), **ppl,
                   "fit_s": fitted - started, "score_s": scored - fitted,
                   "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip
            rows.append(row)
            print(f"| {order} | {name} {cutoffs} | {row['kept']:,} | {ppl['val']:.2f} | {ppl['test']:.2f} | "
                  f"{row['fit_s']:.2f} | {row['score_s']:.2f} | {row['peak_mb']:,.0f} |", flush=True)  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
