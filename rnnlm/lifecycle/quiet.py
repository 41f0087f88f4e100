"""Library noise a run should not print: product tips, and deprecation warnings about the libraries'
own internals that no rnnlm setting can change. Imported once, by rnnlm.run.build."""

from __future__ import annotations

import logging
import warnings

# Lightning's product tips, and its note that it did not add a model summary because rnnlm's is there.
_NOISE = ("💡 Tip", "Trainer already configured with model summary callbacks")


def _drop_adverts(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_NOISE)


# Lightning prints these through its rank-zero loggers.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(_drop_adverts)

# Lightning's own pytree helper calls a torch function that torch 2.13 deprecates (Lightning's to fix).
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")

# Weight drop hands cuDNN freshly dropped hidden matrices every step, so they are never in its flat buffer:
# the copy it warns about is what weight drop costs (measured in docs/AWD.md), not a mistake to fix.
warnings.filterwarnings("ignore", message=r".*RNN module weights are not part of single contiguous chunk.*")
