"""A test callback: one rank stops answering at a training step, as a rank stuck in I/O or a dead GPU would.

It sleeps in small steps in Python, so signals still reach it, while the other ranks wait in the next
collective (inside C++, where a Python signal handler cannot run). `marker` is written when it starts.
"""

import os
import time
from pathlib import Path

import lightning as L


class StallAt(L.Callback):
    def __init__(self, step: int, seconds: float = 600.0, rank: int | None = None, marker: str | None = None) -> None:
        self.step, self.seconds, self.rank, self.marker = step, seconds, rank, marker

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step != self.step or self.rank not in (None, trainer.global_rank):
            return
        if self.marker:
            Path(self.marker).write_text(str(os.getpid()))
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            time.sleep(0.1)
