"""Shared glue for the entry points: user mistakes end in one sentence, not a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from rnnlm.errors import UserError

T = TypeVar("T")
log = logging.getLogger("rnnlm")


def user_error(err: BaseException | None) -> UserError | None:
    """The UserError behind `err`: hydra's instantiate wraps what a constructor raises in its own error."""
    while err is not None:
        if isinstance(err, UserError):
            return err
        err = err.__cause__ or err.__context__
    return None


def run_or_exit(fn: Callable[..., T], *args, **kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        err = user_error(exc)
        if err is None:
            raise
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
