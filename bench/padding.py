"""Pad fraction and batches per epoch of the training split for several bucket widths.

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
    print("| bucket_width | batches/epoch | mean sentences/batch | pad fraction |")
    print("|---|---|---|---|")
    for width in (1, 2, 4, 8):
        cfg = config(*overrides, f"data.bucket_width={width}")
        dm = instantiate(cfg.data, tokenizer=dict(cfg.tokenizer))
        dm.prepare()
        lengths = dm.splits["train"].lengths + 1  # + <eos>
        batches = dm.sampler("train").batches(0)
        real = sum(int(lengths[b].sum()) for b in batches)
        total = sum(len(b) * int(lengths[b].max()) for b in batches)
        print(f"| {width} | {len(batches)} | {np.mean([len(b) for b in batches]):.1f} | {1 - real / total:.2%} |")


if __name__ == "__main__":
    main()
