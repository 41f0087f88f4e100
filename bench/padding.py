"""Pad fraction and batches per epoch of the training split for several bucket widths, batching by
sentence count (data.batch_size) and by token budget (data.max_tokens).

    python -m bench.padding                 # Penn Treebank, default batch size
    python -m bench.padding data.batch_size=64

pad fraction = pad targets / all target positions over one epoch's batches (the work spent on padding).
"""

from __future__ import annotations

import sys

import numpy as np

from bench.common import TABLE_HEADER, Row, config, first_epoch

CONFIGS = ((1, None), (2, None), (4, None), (8, None), (1, 1024), (4, 1024))  # (bucket_width, max_tokens)


def measure(overrides=()) -> list[Row]:
    """Batches per epoch and pad fraction of each batching (one epoch's order: exact, not timed)."""
    rows = []
    for width, budget in CONFIGS:
        cfg = config(*overrides, f"data.bucket_width={width}", f"data.max_tokens={budget or 'null'}")
        lengths, batches = first_epoch(cfg)
        real = sum(int(lengths[b].sum()) for b in batches)
        total = sum(len(b) * int(lengths[b].max()) for b in batches)
        tokens = [int(lengths[b].sum()) for b in batches]
        how = f"max_tokens={budget}" if budget else f"batch_size={cfg.data.batch_size}"
        what = (f"{how}, bucket_width={width}: {np.mean([len(b) for b in batches]):.1f} sentences and "
                f"{np.mean(tokens):.0f} (max {max(tokens)}) target tokens a batch")  # fmt: skip
        key = f"padding/{how.replace('=', '-')}/width-{width}"
        rows.append(Row(f"{key}/batches", what, [len(batches)], "batches/epoch"))
        rows.append(Row(f"{key}/pad", f"{how}, bucket_width={width}: pad fraction", [100 * (1 - real / total)],
                        "% of target positions"))  # fmt: skip
    return rows


def main() -> None:
    print(TABLE_HEADER)
    for row in measure(sys.argv[1:]):
        print(row.markdown())


if __name__ == "__main__":
    main()
