"""Writing files so that a failure never leaves half of one: every output of rnnlm goes through here."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

# Temporary files and folders being written right now. A process that must end at once (a run stuck
# after Ctrl-C or SIGTERM, see rnnlm.interrupt) removes them before it exits, so even then no half-written
# file is left behind; everything else removes its own.
_unfinished: set[Path] = set()


@contextmanager
def unfinished(path: Path) -> Iterator[Path]:
    """Register a temporary file or folder for the duration of the block."""
    _unfinished.add(path)
    try:
        yield path
    finally:
        _unfinished.discard(path)


def remove_unfinished() -> None:
    for path in list(_unfinished):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", fsync: bool = False) -> Iterator[IO]:
    """Write to a temporary file beside `path` and rename it over `path` only when the block succeeds.

    A crash, a kill or a full disk mid-write leaves the previous file (if any) untouched and no temporary
    file behind. `fsync`: flush to disk before the rename (checkpoints: survive a power cut too).
    """
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with unfinished(Path(tmp)):
        try:
            with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
                yield f
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
