"""Shared glue for the entry points: user mistakes end in one sentence, not a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from rnnlm.errors import UserError

T = TypeVar("T")
log = logging.getLogger("rnnlm")


# What a setting the config marks `???` (mandatory) holds, for the sentence that asks for it.
MANDATORY = {"ckpt_path": "a checkpoint written by train.py, e.g. outputs/train/runs/<date_time>/checkpoints/last.ckpt"}


def user_error(err: BaseException | None) -> UserError | None:
    """The UserError behind `err`: hydra's instantiate wraps what a constructor raises in its own error; a
    mandatory setting left out (OmegaConf's MissingMandatoryValue) becomes one that names it."""
    while err is not None:
        if isinstance(err, UserError):
            return err
        if isinstance(err, MissingMandatoryValue):
            key = err.full_key or "a setting"
            what = MANDATORY.get(key.rsplit(".", 1)[-1], "its value")
            return UserError(f"{key} is not set: add {key}=... to the command ({what}).")
        err = err.__cause__ or err.__context__
    return None


class ErrorExit(SystemExit):
    """`sys.exit(2)` after the one-sentence error, the sentence kept for launchers that report it per sweep
    point (Ray runs a job in a worker whose stderr the sweep does not read)."""

    def __init__(self, sentence: str) -> None:
        super().__init__(2)
        self.sentence = sentence


def run_or_exit(fn: Callable[..., T], *args, **kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        err = user_error(exc)
        if err is None:
            raise
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise ErrorExit(str(err)) from None


def plain(value: object) -> object:
    """A config node as plain Python (dicts, lists), resolved; anything else as it is."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
