"""How a cluster launcher reports sweep points that failed: each by the overrides that set it apart, in the
job's own words, one line each; then one sentence, and the sweep exits 1 once every other point has finished."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def point_label(overrides: Sequence[str], every_point: Sequence[Sequence[str]]) -> str:
    """The overrides of one point that not every point of the sweep shares (`model.dropout=1.5`)."""
    from hydra.core.utils import filter_overrides

    shared = set.intersection(*(set(o) for o in every_point)) if every_point else set()
    return " ".join(filter_overrides([o for o in overrides if o not in shared])) or "the only point"


def exit_if_failed(failed: list[str], total: int) -> None:
    """Each failure's line on stderr, then the sweep's one sentence (SystemExit); nothing when none failed."""
    if not failed:
        return
    for line in failed:
        print(f"error: {line}", file=sys.stderr)
    sys.exit(f"error: {len(failed)} of {total} sweep jobs failed (above); the others finished (their folders hold "
             "results.json).")  # fmt: skip


def last_line(text: str, default: str = "it failed without a message") -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else default
