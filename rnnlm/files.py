"""Writing files so that a failure never leaves half of one: every output of rnnlm goes through here."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rnnlm.errors import UserError

# Temporary files and folders being written right now. A process that must end at once (a run stuck
# after Ctrl-C or SIGTERM, see rnnlm.lifecycle.interrupt) removes them before it exits, so even then no half-written
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


_CAUSES = {
    errno.ENOSPC: "no space is left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "there is no permission to write there",
    errno.EPERM: "there is no permission to write there",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a file stands where a folder should be",
    errno.EISDIR: "a folder stands where the file should be",
    errno.EEXIST: "a file stands where a folder should be",
    errno.EFBIG: "the file grew past the size this process may write",
}


def os_cause(err: OSError) -> str:
    """What an operating-system error means for the user, in a few words."""
    return _CAUSES.get(err.errno, err.strerror or str(err))


class WriteError(UserError):
    """A file could not be written (full disk, no permission, a file where a folder should be)."""

    def __init__(self, path: Path, err: OSError) -> None:
        self.path, self.cause = path, os_cause(err)
        super().__init__(f"{path} could not be written: {self.cause}; free space there or choose another place.")


def _temp_beside(target: Path) -> tuple[int, str]:
    """A new temporary file in `target`'s folder (made if missing), or the WriteError saying why not."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise WriteError(target, err) from err


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, with the reason, if `path` could not be written later (before the work that fills it).
    A temporary file beside it is made and removed, and so are the folders made for it: nothing is left."""
    target = Path(path).expanduser().absolute()
    missing = [p for p in target.parents if not p.exists()]
    try:
        fd, tmp = _temp_beside(target)
        os.close(fd)
        os.unlink(tmp)
    finally:
        for folder in missing:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                pass


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", fsync: bool = False) -> Iterator[IO]:
    """Write to a temporary file beside `path` and rename it over `path` only when the block succeeds.

    A crash, a kill or a full disk mid-write leaves the previous file (if any) untouched and no temporary
    file behind; an operating-system error is raised as a WriteError naming the path and the cause.
    `fsync`: flush to disk before the rename (checkpoints: survive a power cut too).
    """
    target = Path(path).expanduser()
    fd, tmp = _temp_beside(target)
    with unfinished(Path(tmp)):
        try:
            with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
                yield f
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException as err:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise WriteError(target, err) from err
            raise
