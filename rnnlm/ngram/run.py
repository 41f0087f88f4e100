"""run(cfg): what `python -m rnnlm.ngram` runs. The corpus a training run would read (the same source, tokenizer
and vocabulary, from the same cache), a Kneser-Ney model of the training split, and the corpus perplexity of each
scored split: every word and <eos> counted, <unk> a word like any other, each sentence read from <s> alone (an
n-gram model forgets the sentence before), so the numbers are sentence-level. results.json goes to the run folder,
in the shape the sweep report reads.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rnnlm import checks
from rnnlm.cli import plain
from rnnlm.data.tokenizer import kind_of, special_ids
from rnnlm.errors import UserError
from rnnlm.files import atomic_open
from rnnlm.ngram.grams import Text
from rnnlm.ngram.kneser_ney import KneserNey, gram
from rnnlm.run.build import build_datamodule
from rnnlm.run.results import overrides

log = logging.getLogger("rnnlm")
SPLITS = ("train", "val", "test")


def check_settings(order: Any, cutoffs: Any, splits: Any, fallback: Any) -> list[int]:
    """order, cutoffs, splits and fallback_discounts checked before any data is read; the cutoffs as one per
    order."""
    checks.integer("order", order)
    if fallback is not None:
        if isinstance(fallback, (str, bytes)) or not isinstance(fallback, Sequence) or len(fallback) != 3:
            raise UserError(f"fallback_discounts={fallback!r} must be three discounts D1, D2, D3+, e.g. "
                            "[0.5,1.0,1.5], or null.")  # fmt: skip
        for r, d in enumerate(fallback, start=1):
            checks.number("fallback_discounts", d, 0.0, float(r), high_open=False, low_open=True)
    if cutoffs is None:
        cutoffs = [1] * order
    if isinstance(cutoffs, (str, bytes)) or not isinstance(cutoffs, Sequence) or len(cutoffs) != order:
        raise UserError(f"cutoffs={cutoffs!r} must give one least count per order ({order} for order={order}), "
                        f"e.g. cutoffs=[{','.join(['1'] * order)}], or be null.")  # fmt: skip
    for least in cutoffs:
        checks.integer("cutoffs", least)
    if isinstance(splits, (str, bytes)) or not isinstance(splits, Sequence) or not set(splits) <= set(SPLITS):
        raise UserError(f"splits={splits!r} must be a list of {', '.join(SPLITS)}, e.g. splits=[val,test].")
    return list(cutoffs)


def run(cfg: DictConfig) -> dict[str, float]:
    started = time.perf_counter()
    order, splits = cfg.order, plain(cfg.splits)
    fallback = plain(cfg.get("fallback_discounts"))
    cutoffs = check_settings(order, plain(cfg.get("cutoffs")), splits, fallback)
    datamodule = build_datamodule(cfg, None)
    if datamodule.mode == "stream":
        log.info("data.mode=stream is not an n-gram's: it reads each sentence from <s>, so its numbers are "
                 "sentence-level")  # fmt: skip
    datamodule.prepare()
    train = datamodule.splits["train"]
    longest = int(train.lengths.max(initial=0))
    if longest + 2 < order:  # <s> + the words + </s>
        raise UserError(f"the training split's longest sentence has {longest} tokens, too few for a {gram(order)} "
                        f"(with <s> and </s>: {longest + 2}): use order={longest + 2} or more text.")  # fmt: skip
    ids = special_ids(datamodule.tokenizer)
    never = [ids["pad"], ids["sos"]]
    per_character = kind_of(datamodule.tokenizer) == "char"
    model = KneserNey(order, datamodule.vocab_size, ids["sos"], never, cutoffs, fallback)
    fitting = time.perf_counter()
    model.fit(Text.of(train, ids["sos"], ids["eos"]))
    fitted = time.perf_counter() - fitting
    for k, level in enumerate(model.levels, start=1):
        log.info("%ss: %s distinct, %s kept; discounts %.3f %.3f %.3f", gram(k), f"{level.seen:,}",
                 f"{level.kept:,}", *level.discounts)  # fmt: skip
    metrics: dict[str, float] = {}
    for split in splits:
        logp = model.log_probs(Text.of(datamodule.splits[split], ids["sos"], ids["eos"]))
        nll = -float(logp.sum())
        metrics.update({f"{split}/ppl": math.exp(nll / len(logp)), f"{split}/loss": nll / len(logp),
                        f"{split}/tokens": float(len(logp))})  # fmt: skip
        if per_character:  # as a character model's run logs it (docs/DATA.md)
            metrics[f"{split}/bpc"] = nll / len(logp) / math.log(2)
    name = f"kn{order}"
    results = {
        "overrides": overrides(), "cell": name, "kind": "ngram", "level": "sentence",
        "order": order, "cutoffs": cutoffs, "fallback_discounts": fallback, "vocab_size": datamodule.vocab_size,
        "num_ngrams": [lv.kept for lv in model.levels], "discounts": [list(lv.discounts) for lv in model.levels],
        "metrics": metrics, "fit_time_s": fitted, "wall_time_s": time.perf_counter() - started,
        "data": plain(cfg.data), "tokenizer": plain(cfg.get("tokenizer")),
    }  # fmt: skip
    folder = Path(cfg.paths.output_dir)
    with atomic_open(folder / "results.json") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    numbers = " | ".join(f"{k} {v:.2f}" for k, v in metrics.items() if k.endswith("/ppl"))
    numbers += "".join(f" | {k} {v:.3f}" for k, v in metrics.items() if k.endswith("/bpc"))
    print(f"{name.upper()} (sentence-level) {numbers} | {folder}", flush=True)
    return metrics
