"""Shared glue for the entry points: user mistakes end in one sentence, not a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from rnnlm.errors import UserError

T = TypeVar("T")
log = logging.getLogger("rnnlm")


def run_or_exit(fn: Callable[..., T], *args, **kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    except UserError as err:
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
