"""The data summary printed before training: what was kept, what was dropped and why, what it looks like."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlm.data.corpus import EncodedSplit


def length_histogram(lengths: np.ndarray, bins: int = 8, width: int = 40) -> list[str]:
    """Text bars of the sentence-length distribution, in `bins` equal ranges of length."""
    lo, hi = int(lengths.min()), int(lengths.max())
    step = max(1, -(-(hi - lo + 1) // bins))
    edges = np.arange(lo, hi + step + 1, step)
    counts, _ = np.histogram(lengths, bins=edges)
    top = max(int(counts.max()), 1)
    lines = []
    for a, c in zip(edges[:-1], counts):
        label = f"{a}" if step == 1 else f"{a}-{a + step - 1}"
        lines.append(f"  {label:>9} | {'#' * round(width * c / top):<{width}} {c:>9,} ({100 * c / len(lengths):4.1f}%)")
    return lines


def describe(splits: dict[str, EncodedSplit], meta: dict[str, Any], vocab_size: int) -> list[str]:
    lines = []
    for split, data in splits.items():
        f = meta["filters"][split]
        lens = data.lengths
        unk = 100.0 * meta["unk"][split] / max(len(data.tokens), 1)  # counted when encoded: a reload reads no token
        oov = "<unk>" if split == "train" else "OOV (<unk>)"
        dropped = ""
        if f["too_short"] or f["too_long"]:
            dropped = (
                f" (of {f['kept'] + f['too_short'] + f['too_long']:,}: {f['too_short']:,} dropped by "
                f"data.min_len={meta['min_len']}, {f['too_long']:,} by data.max_len={meta['max_len']})"
            )
        lines.append(
            f"{split:<5} {f['kept']:>9,} sentences{dropped}, {len(data.tokens):>11,} tokens, "
            f"length {lens.min()}-{lens.max()} (mean {lens.mean():.1f}), {oov} {unk:.2f}%"
        )
    lines.append(f"vocabulary: {vocab_size:,} tokens (specials included), {meta['tokenizer']}")
    for key, n in meta.get("undecodable_lines", {}).items():
        lines.append(f"{key}: {n:,} lines held bytes that are not UTF-8; they were replaced with U+FFFD")
    lines.append("train sentence lengths (tokens):")
    lines.extend(length_histogram(splits["train"].lengths))
    return lines
