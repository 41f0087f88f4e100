"""Pad fraction and batches per epoch of the training split for several bucket widths, batching by
sentence count (data.batch_size) and by token budget (data.max_tokens).

    python -m bench.padding                 # Penn Treebank, default batch size
    python -m bench.padding data.batch_size=64

pad fraction = pad targets / all target positions over one epoch's batches (the work spent on padding).
"""

from __future__ import annotations

import sys

import numpy as np
from hydra.utils import instantiate

from bench.common import config


def main() -> None:
    overrides = sys.argv[1:]
    print("| batching | bucket_width | batches/epoch | mean sentences/batch | target tokens/batch (mean, max) "
          "| pad fraction |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for width, budget in ((1, None), (2, None), (4, None), (8, None), (1, 1024), (4, 1024)):
        cfg = config(*overrides, f"data.bucket_width={width}", f"data.max_tokens={budget or 'null'}")
        dm = instantiate(cfg.data, tokenizer=dict(cfg.tokenizer))
        dm.prepare()
        lengths = dm.splits["train"].lengths + 1  # + <eos>
        batches = dm.sampler("train").batches(0)
        real = sum(int(lengths[b].sum()) for b in batches)
        total = sum(len(b) * int(lengths[b].max()) for b in batches)
        tokens = [int(lengths[b].sum()) for b in batches]
        how = f"max_tokens={budget}" if budget else f"batch_size={cfg.data.batch_size}"
        print(
            f"| {how} | {width} | {len(batches)} | {np.mean([len(b) for b in batches]):.1f} "
            f"| {np.mean(tokens):.0f}, {max(tokens)} | {1 - real / total:.2%} |"
        )


if __name__ == "__main__":
    main()
