"""Stream mode's hidden state: carried from window to window of each split, detached (truncated BPTT; detaching
needs no device sync), saved with a mid-epoch checkpoint (each DDP rank's own) and given back on resuming.

A batch says whether it continues the previous one (`Batch.continues`: stream windows do, sentence batches do
not), so the data decides, whatever mode the module was trained in: eval.py may read a stream checkpoint's
weights over sentences, or the reverse. A split's first window starts from zeros.
"""

from __future__ import annotations

from typing import Any

import torch

from rnnlm.data.batch import Batch
from rnnlm.data.sources import SPLITS
from rnnlm.models.rnn_lm import detach


class StreamState:
    def __init__(self) -> None:
        self.carried: dict[str, Any] = dict.fromkeys(SPLITS)
        self.restored: list[torch.Tensor] | None = None  # every rank's training state, from a checkpoint

    def take(self, split: str, batch: Batch, batch_idx: int, rank: int, device: torch.device) -> Any:
        """The state this batch starts from (None: zeros)."""
        if split == "train" and self.restored is not None:
            # A run resumed mid-epoch goes on from the saved state; one saved at an epoch's end starts afresh.
            mine = [t[rank].to(device) for t in self.restored]
            self.restored = None
            if batch_idx > 0:
                self.carried["train"] = mine[0] if len(mine) == 1 else tuple(mine)
        if not batch.continues or batch_idx == 0:
            return None
        return self.carried[split]

    def keep(self, split: str, batch: Batch, hidden: Any) -> None:
        if batch.continues:
            self.carried[split] = detach(hidden)

    def gathered(self, module) -> list[torch.Tensor] | None:
        """The training state of every rank, for a checkpoint (every rank calls this; rank 0 writes the file)."""
        hidden = self.carried["train"]
        if hidden is None:
            return None
        parts = (hidden,) if isinstance(hidden, torch.Tensor) else hidden
        many = module.trainer.world_size > 1
        return [(module.all_gather(t) if many else t[None]).cpu() for t in parts]
