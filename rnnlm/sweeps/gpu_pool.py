"""A machine-wide pool of GPUs, one lock file per card, so concurrent jobs never share a card.

A job claims a card before CUDA starts (then sets CUDA_VISIBLE_DEVICES to it) and holds an exclusive
`fcntl` lock on that card's file while it runs. The kernel drops the lock when the holder exits, however
it exits (an exception, a kill, a crash), so a failed job can never keep its card. Because the locks live
in one folder for the whole machine, two sweeps started side by side share the cards too.

Kept free of torch and CUDA imports: the launcher imports it in the parent process, and claiming must
happen before anything initialises CUDA.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = "/tmp/rnnlm-gpu-locks"


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries, without initialising CUDA.

    CUDA_VISIBLE_DEVICES wins when set (an empty value means none); otherwise `nvidia-smi -L` lists
    the cards. No driver, no cards: an empty list, and jobs run on the CPU.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


class DevicePool:
    """Exclusive claims on `devices` through lock files in `lock_dir` (shared by every job on the machine)."""

    def __init__(self, devices: Sequence[str], lock_dir: str | os.PathLike = DEFAULT_LOCK_DIR) -> None:
        self.devices = [str(d) for d in devices]
        self.lock_dir = Path(lock_dir)
        # A card listed k times offers k slots (several small jobs per card), each with its own lock file.
        seen: dict[str, int] = {}
        self._slots = []
        for d in self.devices:
            k = seen[d] = seen.get(d, -1) + 1
            self._slots.append(f"gpu-{d.replace('/', '_')}" + (f".{k}" if k else "") + ".lock")

    def _open(self, slot: int) -> int:
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        path = self.lock_dir / self._slots[slot]
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file: a read-only descriptor can still be locked
            fd = os.open(path, os.O_RDONLY)
        try:
            os.fchmod(fd, 0o666)  # let other users' jobs open it too
        except OSError:
            pass
        return fd

    def try_claim(self) -> tuple[str, int] | None:
        """The first free device and the descriptor whose lock holds it, or None when all are taken."""
        for slot, device in enumerate(self.devices):
            fd = self._open(slot)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    continue
                raise
            try:  # who holds it, for a person looking at the folder
                os.ftruncate(fd, 0)
                os.write(fd, f"pid {os.getpid()}\n".encode())
            except OSError:
                pass
            return device, fd
        return None

    @contextmanager
    def claim(self, poll_s: float = 2.0, on_wait: Callable[[], None] | None = None) -> Iterator[str | None]:
        """Hold one device for the `with` block (None when the pool is empty: run on the CPU).

        Waits, polling, while every device is held (by this sweep's other jobs or by another sweep).
        """
        if not self.devices:
            yield None
            return
        claimed = self.try_claim()
        if claimed is None and on_wait is not None:
            on_wait()
        while claimed is None:
            time.sleep(poll_s)
            claimed = self.try_claim()
        device, fd = claimed
        try:
            yield device
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def held(self) -> list[str]:
        """Devices some process holds right now (a probe that takes and drops each free lock)."""
        busy = []
        for slot, device in enumerate(self.devices):
            fd = self._open(slot)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError:
                busy.append(device)
            finally:
                os.close(fd)
        return busy
